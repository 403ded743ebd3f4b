"""`doorlink command`: a one-shot admin client of the bench's JSON WebSocket
API - subscribe, send a command to a device, wait for its command_result,
print it.

    doorlink command DEVICE unlock [--payload '{"duration_ms": 5000}'] [--server URL]

The admin token (a bench that wants one: beyond loopback, or
--require-auth) comes from --token or, to keep it out of shell history and
`ps`, from the DOORLINK_ADMIN_TOKEN environment variable.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import uuid

import aiohttp

from host_tools.cli_common import CliError, Parents, positive


class CommandFailed(RuntimeError):
    pass


TOKEN_ENV = "DOORLINK_ADMIN_TOKEN"


async def send_command(server: str, device_id: str, command: str, payload: dict | None = None,
                       timeout: float = 10.0, token: str | None = None) -> dict:
    """The device's command_result payload; CommandFailed on a bench error,
    a refusal by the device, or no answer within `timeout`. `token`: the
    admin's, sent in `subscribe`."""
    cmd_id = "cli-" + uuid.uuid4().hex[:8]
    async with aiohttp.ClientSession() as session:
        try:
            ws = await session.ws_connect(server, timeout=aiohttp.ClientWSTimeout(ws_close=2))
        except aiohttp.WSServerHandshakeError as e:
            raise CommandFailed(f"{server} refused the connection: HTTP {e.status} {e.message}") from None
        except (aiohttp.ClientError, OSError) as e:
            raise CommandFailed(f"cannot reach {server}: {e} (is the bench running?)") from None
        async with ws:
            subscribe = {"type": "subscribe", "role": "admin"}
            if token:
                subscribe["token"] = token
            await ws.send_json(subscribe)
            await ws.send_json({"type": "command", "device_id": device_id, "command": command,
                                "payload": payload or {}, "id": cmd_id})

            async def result() -> dict:
                async for msg in ws:
                    if msg.type != aiohttp.WSMsgType.TEXT:
                        continue
                    data = json.loads(msg.data)
                    if data.get("type") == "error":
                        raise CommandFailed(data.get("message", "bench error"))
                    p = data.get("payload") or {}
                    if (data.get("type") == "event" and data.get("event_type") == "command_result"
                            and p.get("id") == cmd_id):
                        return p
                raise CommandFailed("bench closed the connection")

            try:
                return await asyncio.wait_for(result(), timeout)
            except TimeoutError:
                raise CommandFailed(f"no result from {device_id} within {timeout}s") from None


def add_parser(sub: argparse._SubParsersAction, parents: Parents) -> argparse.ArgumentParser:
    p = sub.add_parser("command", parents=[parents.server],
                       help="send a command to a device as an admin and print its result")
    p.add_argument("device")
    p.add_argument("command", help="e.g. unlock, lock, status, set_time, reboot, enrol")
    p.add_argument("--payload", default="{}", help='JSON object, e.g. \'{"duration_ms": 5000}\'')
    p.add_argument("--timeout", type=positive, default=10.0, help="seconds to wait (default %(default)s)")
    p.add_argument("--token", default=os.environ.get(TOKEN_ENV),
                   help=f"admin token, where the bench wants one (default: ${TOKEN_ENV})")
    p.set_defaults(handler=run)
    return p


def run(args: argparse.Namespace) -> int:
    try:
        payload = json.loads(args.payload)
    except ValueError as e:
        raise CliError(f"--payload is not JSON ({e})", 'give a JSON object, e.g. --payload \'{"duration_ms": 5000}\'') \
            from None
    if not isinstance(payload, dict):
        raise CliError("--payload must be a JSON object", 'e.g. --payload \'{"duration_ms": 5000}\'')
    try:
        res = asyncio.run(send_command(args.server, args.device, args.command, payload, args.timeout, args.token))
    except CommandFailed as e:
        if "authentication" in str(e):
            hint = f"give the admin token: --token or ${TOKEN_ENV} (doorlink bench add-admin makes one)"
        else:
            hint = f"check that {args.device} is online: doorlink demo / bench show it"
        raise CliError(str(e), hint, code=1) from None
    print(json.dumps(res, indent=2, sort_keys=True))
    return 0 if res.get("ok") else 1
