# Bad input from every side the agent listens to. The agent must log it,
# count it and keep working; the bench must answer `error` and stay up.
import asyncio
import json

import aiohttp
from aiohttp import web

from e2e_support import DEVICE, eventually


class HostileCloud:
    """A WebSocket server that registers the device and then misbehaves on
    purpose; tests drive it one message at a time."""

    def __init__(self):
        self.registers = 0
        self.conns = asyncio.Queue()
        self.closes = asyncio.Queue()   # the close code of each connection that ended
        self.sockets = []

    async def handler(self, request):
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        self.sockets.append(ws)
        first = json.loads((await ws.receive()).data)
        assert first["type"] == "register"
        self.registers += 1
        await ws.send_json({"type": "registered", "device_id": first["device_id"]})
        inbox = asyncio.Queue()
        await self.conns.put((ws, inbox))
        async for msg in ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                await inbox.put(json.loads(msg.data))
        await self.closes.put(ws.close_code)
        return ws

    async def start(self):
        app = web.Application()
        app.router.add_get("/ws", self.handler)
        self.runner = web.AppRunner(app, shutdown_timeout=1)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.url = "ws://127.0.0.1:%d/ws" % site._server.sockets[0].getsockname()[1]
        return self

    async def stop(self):
        for ws in self.sockets:
            await ws.close()
        await self.runner.cleanup()


async def _next_of(inbox, kind):
    while True:
        m = await inbox.get()
        if m.get("type") == kind:
            return m


async def _result(inbox, cmd_id, timeout=10):
    async def scan():
        while True:
            m = await inbox.get()
            if m.get("event_type") == "command_result" and m["payload"].get("id") == cmd_id:
                return m["payload"]
    return await asyncio.wait_for(scan(), timeout)


async def test_agent_survives_hostile_cloud(runtime, rig):
    cloud = await HostileCloud().start()
    try:
        await rig.start_agent(rig.write_site(cloud.url, max_frame=4096, telemetry_interval_s=60), runtime=runtime)
        ws, inbox = await asyncio.wait_for(cloud.conns.get(), 15)

        await ws.send_str('{"type": "ping"}')  # the protocol: answer with pong
        assert await asyncio.wait_for(_next_of(inbox, "pong"), 10) == {"type": "pong"}

        await ws.send_str("{not json at all")
        await ws.send_str("[1, 2, 3]")
        await ws.send_str('{"type": "launch_rockets"}')
        await ws.send_str(json.dumps({"type": "command", "device_id": DEVICE, "command": "self_destruct",
                                      "payload": {}, "id": "c1"}))
        refused = await _result(inbox, "c1")
        assert refused["ok"] is False and "unknown command 'self_destruct'" in refused["error"]

        await ws.send_str(json.dumps({"type": "command", "command": "unlock", "id": "c2",
                                      "payload": {"duration_ms": "forever"}}))
        bad_payload = await _result(inbox, "c2")
        assert bad_payload["ok"] is False and "duration_ms" in bad_payload["error"]
        await ws.send_str("[" * 1000)                      # nested deeper than any message may be

        await ws.send_str(json.dumps({"type": "command", "command": "status", "id": "c3"}))
        counters = (await _result(inbox, "c3"))["result"]["counters"]
        for name in ("bad_json", "bad_message", "unknown_type", "commands_failed"):
            assert counters.get(name, 0) >= 1, (name, counters)

        # What the WebSocket layer refuses, at the frame header, before a byte
        # of payload is kept: the agent closes with the RFC's code and comes
        # back (with backoff) on a fresh connection.
        for frame, opcode, code in (
                (json.dumps({"type": "command", "command": "unlock", "pad": "x" * 6000}).encode(),
                 aiohttp.WSMsgType.TEXT, 1009),                            # over max_frame (4096)
                (b"y" * 1_000_000, aiohttp.WSMsgType.TEXT, 1009),          # far over: never allocated
                (b'{"type": "ping", "x": "\xed\xa0\x80"}', aiohttp.WSMsgType.TEXT, 1007),  # a lone surrogate
                (b"\x00\x01", aiohttp.WSMsgType.BINARY, 1003)):             # text only
            try:
                await ws.send_frame(frame, opcode)
            except ConnectionError:
                pass   # the agent hung up after the header, before we finished sending: as it should
            assert await asyncio.wait_for(cloud.closes.get(), 15) == code
            ws, inbox = await asyncio.wait_for(cloud.conns.get(), 30)
        assert cloud.registers == 5
        assert rig.session.emulator.relay_energised() is False  # the oversized unlock never ran
        await ws.send_str(json.dumps({"type": "command", "command": "unlock", "id": "c4"}))
        assert (await _result(inbox, "c4"))["ok"] is True
        # The agent's lines come on its stdout, which can lag the socket.
        for reason in ("over the 4096 byte limit (close 1009)", "not valid UTF-8 (close 1007)",
                       "binary messages are not accepted (text only) (close 1003)", "malformed JSON ignored"):
            await eventually(lambda r=reason: r in rig.output(), timeout=10)
        assert "Traceback" not in rig.output()
        assert rig.session.proc.returncode is None
    finally:
        await cloud.stop()


async def test_a_flood_of_commands_is_answered_every_one(runtime, rig):
    # 3,000 commands in one burst: each is run or refused `busy`, every one
    # answered, none lost to a MemoryError (the board's heap budget holds on
    # MicroPython), and the link stays up.
    cloud = await HostileCloud().start()
    try:
        await rig.start_agent(rig.write_site(cloud.url, telemetry_interval_s=60), runtime=runtime)
        ws, inbox = await asyncio.wait_for(cloud.conns.get(), 15)
        n = 3000
        for i in range(n):
            await ws.send_str('{"type": "command", "command": "lock", "id": "f%d"}' % i)
        answered = {}

        async def collect():
            while len(answered) < n:
                m = await inbox.get()
                if m.get("event_type") == "command_result":
                    answered[m["payload"]["id"]] = m["payload"]
        await asyncio.wait_for(collect(), 120)
        assert sorted(answered) == sorted("f%d" % i for i in range(n))
        busy = [p for p in answered.values() if not p["ok"]]
        assert busy and all("busy" in p["error"] for p in busy)   # about a third, here
        await ws.send_str(json.dumps({"type": "command", "command": "status", "id": "s"}))
        counters = (await _result(inbox, "s"))["result"]["counters"]
        assert counters.get("commands_refused", 0) == len(busy) and "out_of_memory" not in counters
        out = rig.output()
        assert "Traceback" not in out and "MemoryError" not in out and cloud.registers == 1
        assert rig.session.proc.returncode is None
    finally:
        await cloud.stop()


async def test_silent_server_is_detected_as_half_open(runtime, rig):
    # The server registers the device, then never answers a ping again (a
    # blackholed link looks the same from the device).
    cloud = await HostileCloud().start()
    try:
        await rig.start_agent(rig.write_site(cloud.url, heartbeat_s=0.5, telemetry_interval_s=60,
                                             backoff_base_s=0.1, backoff_cap_s=0.2), runtime=runtime)
        ws, inbox = await asyncio.wait_for(cloud.conns.get(), 15)
        assert (await asyncio.wait_for(_next_of(inbox, "ping"), 5)) == {"type": "ping"}
        await asyncio.wait_for(cloud.conns.get(), 10)  # dropped and came back
        await eventually(lambda: "half-open link" in rig.output(), timeout=10)   # stdout can lag the socket
    finally:
        await cloud.stop()


async def test_wrong_token_is_refused_and_agent_keeps_retrying(runtime, rig, bench):
    await rig.start_agent(rig.write_site(token="tok_wrong", backoff_base_s=0.2, backoff_cap_s=0.5), runtime=runtime)
    await eventually(lambda: rig.output().count("registration refused") >= 2, timeout=20)
    assert "check device_id and token" in rig.output()
    assert rig.session.proc.returncode is None
    assert bench.stats["errors"]["auth"] >= 2
    assert not bench.store.telemetry_rows(DEVICE)


async def test_bad_config_exits_with_the_field_and_file(runtime, rig, tmp_path):
    site = tmp_path / "broken-site.json"
    site.write_text(json.dumps({"server": "ws://127.0.0.1:9/ws", "device_id": DEVICE}))
    await rig.start_agent(site, runtime=runtime)
    assert await asyncio.wait_for(rig.session.wait(), 15) == 2
    out = rig.output()
    assert "config error" in out and str(site) in out and "field 'token' is missing" in out
    assert "Traceback" not in out
