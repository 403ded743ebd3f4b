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
import uuid

import aiohttp

from host_tools.cli_common import TOKEN_HINT, CliError, Parents, add_token, positive

WENT_OFFLINE = "went offline before answering"   # in a CommandFailed: the device left with the command


class CommandFailed(RuntimeError):
    pass


class AdminSession:
    """One admin connection to the bench's /ws, for many commands (the CLI
    sends one; benchmarks and scripts send many on one socket).

        async with AdminSession(url, token) as admin:
            result = await admin.command("door-0001", "status")
    """

    def __init__(self, server: str, token: str | None = None) -> None:
        self.server = server
        self.token = token
        self._http: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        # command id -> (its future, the device it went to), until answered
        self._results: dict[str, tuple[asyncio.Future, str]] = {}
        self._reader: asyncio.Task | None = None

    async def __aenter__(self) -> AdminSession:
        self._http = aiohttp.ClientSession()
        try:
            self._ws = await self._http.ws_connect(self.server, timeout=aiohttp.ClientWSTimeout(ws_close=2))
        except aiohttp.WSServerHandshakeError as e:
            await self._http.close()
            raise CommandFailed(f"{self.server} refused the connection: HTTP {e.status} {e.message}") from None
        except (aiohttp.ClientError, OSError) as e:
            await self._http.close()
            raise CommandFailed(f"cannot reach {self.server}: {e} (is the bench running?)") from None
        subscribe = {"type": "subscribe", "role": "admin"}
        if self.token:
            subscribe["token"] = self.token
        await self._ws.send_json(subscribe)
        self._reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._reader:
            self._reader.cancel()
        if self._ws:
            await self._ws.close()
        if self._http:
            await self._http.close()

    async def _read(self) -> None:
        async for msg in self._ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            data = json.loads(msg.data)
            if data.get("type") == "error":
                # A refused command's error names it by id; one that names
                # none (a refused admin, an older bench) is the oldest
                # waiting command's: the bench answers in order.
                cmd_id = data.get("id")
                if cmd_id is None:
                    cmd_id = next(iter(self._results), None)
                elif not isinstance(cmd_id, str) or cmd_id not in self._results:
                    cmd_id = None   # about a command already failed (its device went offline) or not ours
                if cmd_id is not None:
                    fut, _ = self._results.pop(cmd_id)
                    if not fut.done():
                        fut.set_exception(CommandFailed(data.get("message", "bench error")))
                continue
            if data.get("type") == "device_status" and data.get("status") == "offline":
                self._gone(data.get("device_id"))
                continue
            p = data.get("payload") or {}
            if data.get("type") == "event" and data.get("event_type") == "command_result":
                fut, _ = self._results.pop(p.get("id"), (None, None))
                if fut is not None and not fut.done():
                    fut.set_result(p)
        for fut, _ in self._results.values():
            if not fut.done():
                fut.set_exception(CommandFailed("bench closed the connection"))

    def _gone(self, device_id: object) -> None:
        # A device answers a command on the link it got it on; a result it
        # had no link left to send is never sent (close 1009, a reboot, a
        # lost network): waiting out the timeout would only hide that.
        for cmd_id in [c for c, (_, d) in self._results.items() if d == device_id]:
            fut, _ = self._results.pop(cmd_id)
            if not fut.done():
                fut.set_exception(CommandFailed(f"{device_id} {WENT_OFFLINE}: the command may or "
                                                f"may not have run (its log: doorlink logs --device {device_id})"))

    async def send(self, device_id: str, command: str, payload: dict | None = None) -> asyncio.Future:
        """Send a command; the future holds its command_result payload,
        or CommandFailed when the device goes offline before answering."""
        cmd_id = "cli-" + uuid.uuid4().hex[:8]
        fut = asyncio.get_running_loop().create_future()
        self._results[cmd_id] = (fut, device_id)
        await self._ws.send_json({"type": "command", "device_id": device_id, "command": command,
                                  "payload": payload or {}, "id": cmd_id})
        return fut

    async def command(self, device_id: str, command: str, payload: dict | None = None,
                      timeout: float = 10.0) -> dict:
        """The device's command_result payload; CommandFailed on a bench
        error, or no answer within `timeout`."""
        fut = await self.send(device_id, command, payload)
        try:
            return await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            raise CommandFailed(f"no result from {device_id} within {timeout}s") from None


async def send_command(server: str, device_id: str, command: str, payload: dict | None = None,
                       timeout: float = 10.0, token: str | None = None) -> dict:
    """One command on a connection of its own (the CLI): the device's
    command_result payload, or CommandFailed."""
    async with AdminSession(server, token) as admin:
        return await admin.command(device_id, command, payload, timeout)


def add_parser(sub: argparse._SubParsersAction, parents: Parents) -> argparse.ArgumentParser:
    p = sub.add_parser("command", parents=[parents.server],
                       help="send a command to a device as an admin and print its result")
    p.add_argument("device")
    p.add_argument("command", help="e.g. unlock, lock, status, set_time, reboot, enrol")
    p.add_argument("--payload", default="{}", help='JSON object, e.g. \'{"duration_ms": 5000}\'')
    p.add_argument("--timeout", type=positive, default=10.0, help="seconds to wait (default %(default)s)")
    add_token(p)
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
            hint = TOKEN_HINT
        else:
            hint = f"check that {args.device} is online: doorlink demo / bench show it"
        raise CliError(str(e), hint, code=1) from None
    print(json.dumps(res, indent=2, sort_keys=True))
    return 0 if res.get("ok") else 1
