# Hostile clouds for the attendance uplinks, per runtime: every kind of bad
# reply gets a clear log line, the punch stays in the journal, the agent
# backs off and keeps running, and the punch arrives once the cloud behaves.
import json

from aiohttp import web

from host_tools.journal_tool import pending_ids
from host_tools.rig import Rig

from e2e_support import eventually
from test_terminal import DEVICE, _press

BILLION_LAUGHS = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
                  '<!ENTITY lol2 "&lol;&lol;&lol;&lol;">]><Response><Result>&lol2;</Result></Response>')


class Script:
    """Replies handed out in order; after the last bad one, good behaviour."""

    def __init__(self, bad):
        self.bad = list(bad)
        self.seen = []

    def next(self):
        return self.bad.pop(0) if self.bad else None


async def _serve(app):
    runner = web.AppRunner(app, shutdown_timeout=1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1]


def terminal(runtime, tmp_path, uplink):
    """A terminal (the rig, without a bench: the test's cloud is its own)."""
    return Rig(tmp_path, board="emulated-attendance", runtime=runtime, device_id=DEVICE, token="cloud_001",
               uplink=uplink, peripherals={"fingerprint": {"poll_ms": 50}},
               site={"heartbeat_s": 1, "connect_timeout_s": 2, "backoff_base_s": 0.2, "backoff_cap_s": 0.5})


async def punch_once(rig, url):
    """Start the terminal against `url`; one finger press once it is up."""
    session = await rig.start_agent(rig.write_site(url))
    session.reader.enroll(5)
    await rig.wait_for("module ready")
    await rig.wait_registered()
    await _press(session.reader, 5, 0)
    return session


async def test_http_cloud_that_fails_in_every_way(runtime, tmp_path):
    script = Script([
        (500, "text/plain", b"internal error"),
        (200, "application/json", b"<html>not json</html>"),
        (200, "application/json", b'{"ret": "sendlog", "result": true, "pad": "' + b"x" * (10 << 20) + b'"}'),
        (200, "application/json", json.dumps({"ret": "sendlog", "result": False, "reason": "db down"}).encode()),
        (200, "application/json", b"[1, 2, 3]"),
    ])
    stored = []

    async def handler(request):
        body = await request.json()
        script.seen.append(body["cmd"])
        if body["cmd"] == "sendlog":
            bad = script.next()
            if bad:
                return web.Response(status=bad[0], content_type=bad[1], body=bad[2])
            stored.extend(body["record"])
            return web.json_response({"ret": "sendlog", "result": True, "count": body["count"],
                                      "logindex": body["logindex"]})
        return web.json_response({"ret": body["cmd"], "result": True})

    app = web.Application(client_max_size=1 << 20)
    app.router.add_post("/api/device-http", handler)
    runner, port = await _serve(app)
    rig = terminal(runtime, tmp_path, "http")
    try:
        session = await punch_once(rig, "http://127.0.0.1:%d" % port)
        await eventually(lambda: stored, timeout=60)
        out = rig.output()
        for clue in ("HTTP 500", "not JSON", "body over 65536 bytes", "db down", "not a JSON object"):
            assert clue in out, (clue, out[-3000:])
        assert session.proc.returncode is None
        assert [r["enrollid"] for r in stored] == [5]  # the punch, kept through all of it
        assert script.seen.count("reg") >= 5  # each failure: a fresh start, after a backoff
        await eventually(lambda: not pending_ids(rig.journal / DEVICE) or None, timeout=15)
    finally:
        await rig.stop()
        await runner.cleanup()
        print(rig.output())


async def test_xml_cloud_that_fails_in_every_way(runtime, tmp_path):
    script = Script([
        "<Response><Result>success</Result",                  # malformed
        BILLION_LAUGHS,                                       # DTD with entities
        "<Response>" + "<Pad>" + "y" * 40000 + "</Pad></Response>",  # oversized
        "<Response><Operation>TimeLog_v2</Operation><Result>Fail</Result><LogId>1</LogId></Response>",
    ])
    acked = []

    async def handler(request):
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for msg in ws:
            text = msg.data
            if "<Operation>Register</Operation>" in text:
                await ws.send_str("<Response><Result>success</Result><Session>s1</Session>"
                                  "<DeviceSerialNo>%s</DeviceSerialNo></Response>" % DEVICE)
            elif "<Operation>TimeLog_v2</Operation>" in text:
                bad = script.next()
                if bad:
                    await ws.send_str(bad)
                    continue
                acked.append(text)
                await ws.send_str("<Response><Operation>TimeLog_v2</Operation><Result>success</Result>"
                                  "<LogId>1</LogId></Response>")
            elif "<Operation>KeepAlive</Operation>" in text:
                await ws.send_str("<Response><Operation>KeepAlive</Operation><Result>success</Result></Response>")
        return ws

    app = web.Application()
    app.router.add_get("/ws", handler)
    runner, port = await _serve(app)
    rig = terminal(runtime, tmp_path, "xml_ws")
    try:
        session = await punch_once(rig, "ws://127.0.0.1:%d/ws" % port)
        await eventually(lambda: acked, timeout=60)
        out = rig.output()
        for clue in ("DOCTYPE", "refused a record"):
            assert clue in out, (clue, out[-3000:])
        assert session.proc.returncode is None
        assert "<UserId>5</UserId>" in acked[0]
        await eventually(lambda: not pending_ids(rig.journal / DEVICE) or None, timeout=15)
    finally:
        await rig.stop()
        await runner.cleanup()
        print(rig.output())
