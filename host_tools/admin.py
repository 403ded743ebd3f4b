# A one-shot admin client for seed 001: subscribe, send a command to a
# device, wait for its result event. What `doorlink command` runs.
import asyncio
import json
import uuid

import aiohttp


class CommandFailed(RuntimeError):
    pass


async def send_command(server, device_id, command, payload=None, timeout=10.0):
    """Returns the device's command_result payload; raises CommandFailed on a
    bench error, a refusal by the device, or no answer within `timeout`."""
    cmd_id = "cli-" + uuid.uuid4().hex[:8]
    async with aiohttp.ClientSession() as session:
        try:
            ws = await session.ws_connect(server, timeout=aiohttp.ClientWSTimeout(ws_close=2))
        except (aiohttp.ClientError, OSError) as e:
            raise CommandFailed("cannot reach %s: %s (is the bench running?)" % (server, e))
        async with ws:
            await ws.send_json({"type": "subscribe", "role": "admin"})
            await ws.send_json({"type": "command", "device_id": device_id, "command": command,
                                "payload": payload or {}, "id": cmd_id})

            async def result():
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
            except asyncio.TimeoutError:
                raise CommandFailed("no result from %s within %ss" % (device_id, timeout))
