"""The bench as a cloud-control server (the management channel): a fake
device, a real aiohttp WebSocket client, connects to /control with its id
and token; the bench asks app/state first, pings it, routes admins'
requests to it and its replies back, in order, signed when the device has
a control key. And `doorlink control` end to end against that device.
Every bench listens on 127.0.0.1."""

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import os
import stat
import sys
import time

import aiohttp
import pytest
from bench_support import db_rows

from agent.codecs.signing import Verifier
from host_tools.bench import Limits, start_bench
from host_tools.bench.control import MAX_MESSAGE
from host_tools.control_cli import MAX_FILE

DEV = "ctl-door-1"
TOKEN = "tok_ctl_door"
KEY = "k3y-for-signing-0123"
ADMIN_TOKEN = "adm_0123456789abcdef"
STATE = {"app": {"version": "1.0", "license": ""}, "script": {"select": "", "running": False},
         "system": {"os": "linux", "name": "test", "sn": DEV, "ip": "127.0.0.1", "battery": "mains", "log": ""}}
TIMEOUT = 5
WS = aiohttp.WSMsgType


@pytest.fixture
async def make_bench(tmp_path):
    """start_bench on 127.0.0.1 with DEV provisioned (with `control_key`)."""
    started = []

    async def make(control_key=None, ping_s=5.0, **options):
        b = await start_bench("127.0.0.1", 0, str(tmp_path / f"c{len(started)}.sqlite3"),
                              limits=Limits(control_ping_s=ping_s), **options)
        started.append(b)
        b.store.add_device(DEV, TOKEN, control_key=control_key)
        b.store.add_admin("ops", ADMIN_TOKEN)
        return b

    yield make
    for b in started:
        await asyncio.wait_for(b.stop(), TIMEOUT)


async def connect(session, bench, device_id=DEV, token=TOKEN, **options):
    headers = {"X-Device-Id": device_id}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return await asyncio.wait_for(session.ws_connect(bench.http_url + "/control", headers=headers, **options),
                                  TIMEOUT)


async def next_request(ws):
    """The next request the bench sends (pings skipped)."""
    while True:
        msg = await asyncio.wait_for(ws.receive(), TIMEOUT)
        if msg.type == WS.TEXT:
            return json.loads(msg.data)
        assert msg.type in (WS.PING, WS.PONG), msg


async def online(session, bench, state=STATE):
    """A device connected that answered the bench's first app/state."""
    ws = await connect(session, bench)
    first = await next_request(ws)
    assert first["type"] == "app/state"
    await ws.send_json({"type": "app/state", "body": state, "error": ""})
    return ws


def answering(ws, reply_for):
    """A task answering every request with reply_for(request), in order."""
    async def run():
        while True:
            req = await next_request(ws)
            await ws.send_json(reply_for(req))
    return asyncio.create_task(run())


async def ask(session, bench, message, device_id=DEV, timeout=None, headers=None):
    params = {"timeout": str(timeout)} if timeout else {}
    async with session.post(f"{bench.http_url}/api/control/{device_id}", json=message, params=params,
                            headers=headers or {}) as r:
        return r.status, await r.json()


async def status(session, bench, device_id=DEV):
    async with session.get(f"{bench.http_url}/api/control/{device_id}") as r:
        assert r.status == 200
        return await r.json()


async def eventually(check, what):
    for _ in range(100):
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"not within 5 s: {what}")


async def test_app_state_is_asked_first_and_kept(make_bench, session):
    bench = await make_bench()
    ws = await connect(session, bench)
    assert await next_request(ws) == {"type": "app/state"}   # unsigned, body-less, as the API shows
    await ws.send_json({"type": "app/state", "body": STATE, "error": ""})

    async def kept():
        s = await status(session, bench)
        return s["online"] and s["state"] == STATE
    await eventually(kept, "the device's app/state kept")
    await ws.close()

    async def offline():
        return not (await status(session, bench))["online"]
    await eventually(offline, "the device shown offline once it hung up")
    assert (await status(session, bench))["state"] == STATE   # the last state outlives the connection


async def test_pings_keep_a_device_and_a_silent_one_is_dropped(make_bench, session):
    bench = await make_bench(ping_s=0.3)
    ws = await online(session, bench)
    # aiohttp's client answers pings while it reads.
    task = answering(ws, lambda r: {"type": r["type"], "body": "ok", "error": ""})
    await asyncio.sleep(1.2)                     # several intervals of silence
    assert not ws.closed
    assert await ask(session, bench, {"type": "app/register", "body": {"code": "123456789012"}}) == \
        (200, {"type": "app/register", "body": "ok", "error": ""})
    task.cancel()
    await ws.close()

    mute = await connect(session, bench, autoping=False)    # hears pings, never pongs
    assert (await next_request(mute))["type"] == "app/state"
    pinged = closed = False
    for _ in range(50):
        msg = await asyncio.wait_for(mute.receive(), TIMEOUT)
        if msg.type == WS.PING:
            pinged = True
        elif msg.type in (WS.CLOSE, WS.CLOSED, WS.CLOSING, WS.ERROR):
            closed = True
            break
    assert pinged and closed

    async def dropped():
        return not (await status(session, bench))["online"]
    await eventually(dropped, "a device that did not pong shown offline")


async def test_devices_must_authenticate(make_bench, session):
    bench = await make_bench()
    for device_id, token in ((DEV, None), (DEV, "wrong"), ("unknown-door", TOKEN), ("", TOKEN)):
        with pytest.raises(aiohttp.WSServerHandshakeError) as e:
            await connect(session, bench, device_id, token)
        assert e.value.status == 401, (device_id, token)
    assert bench.hub.errors["auth"] == 4
    assert not (await status(session, bench))["online"]


async def test_admins_must_authenticate_where_the_bench_wants_it(make_bench, session):
    bench = await make_bench(require_auth=True)
    ws = await online(session, bench)
    task = answering(ws, lambda r: {"type": r["type"], "error": ""})
    code, answer = await ask(session, bench, {"type": "system/reboot"})
    assert code == 401 and "admin token" in answer["error"]
    code, _ = await ask(session, bench, {"type": "system/reboot"}, headers={"Authorization": "Bearer not-the-token"})
    assert code == 401
    assert await ask(session, bench, {"type": "system/reboot"}, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) \
        == (200, {"type": "system/reboot", "body": None, "error": ""})
    task.cancel()


async def test_a_request_is_routed_and_answered(make_bench, session):
    bench = await make_bench()
    ws = await online(session, bench)
    seen = []

    def reply(req):
        seen.append(req)
        return {"type": req["type"], "body": "line 1\nline 2", "error": ""}
    task = answering(ws, reply)
    assert await ask(session, bench, {"type": "system/log/get", "body": {"last": 2}}) == \
        (200, {"type": "system/log/get", "body": "line 1\nline 2", "error": ""})
    assert seen == [{"type": "system/log/get", "body": {"last": 2}}]
    task.cancel()

    # What the bench cannot send, it refuses before the device hears of it.
    for message, code in (({"type": "App State"}, 400), ({"type": "app/state", "sig": "x"}, 400),
                          (["app/state"], 400)):
        assert (await ask(session, bench, message))[0] == code, message
    code, answer = await ask(session, bench, {"type": "app/state"}, device_id="not-connected")
    assert code == 404 and "no management channel" in answer["error"]
    # A form a web page may post without asking first: not taken.
    async with session.post(f"{bench.http_url}/api/control/{DEV}", data='{"type": "system/reboot"}',
                            headers={"Content-Type": "text/plain"}) as r:
        assert r.status == 400 and "application/json" in (await r.json())["error"]
    assert len(seen) == 1


async def test_replies_are_matched_by_order_and_type(make_bench, session):
    bench = await make_bench()
    ws = await online(session, bench)
    first = asyncio.create_task(ask(session, bench, {"type": "file/list", "body": {"path": "/"}}))
    assert (await next_request(ws))["type"] == "file/list"
    second = asyncio.create_task(ask(session, bench, {"type": "script/list"}))
    assert (await next_request(ws))["type"] == "script/list"
    # Noise first: a reply of another type, something not JSON, a non-object.
    await ws.send_json({"type": "script/list", "body": ["wrong"], "error": ""})
    await ws.send_str("not json")
    await ws.send_json(["file/list"])
    await ws.send_json({"type": "file/list", "body": [{"name": "a", "type": "dir"}], "error": ""})
    await ws.send_json({"type": "script/list", "body": ["door.py"], "error": ""})
    assert await first == (200, {"type": "file/list", "body": [{"name": "a", "type": "dir"}], "error": ""})
    assert await second == (200, {"type": "script/list", "body": ["door.py"], "error": ""})
    await ws.send_json({"type": "script/list", "body": ["unasked"], "error": ""})

    async def counted():
        e = bench.hub.errors
        return e["control_mismatch"] == 1 and e["control_unsolicited"] == 1 and e["malformed_json"] == 1 \
            and e["invalid"] == 1
    await eventually(counted, f"every stray message counted ({dict(bench.hub.errors)})")


async def test_a_device_that_never_answers_times_the_admin_out(make_bench, session):
    bench = await make_bench()
    ws = await online(session, bench)
    code, answer = await ask(session, bench, {"type": "screen/snapshot"}, timeout=0.5)
    assert code == 504 and "did not answer screen/snapshot within 0.5s" in answer["error"]
    assert (await next_request(ws))["type"] == "screen/snapshot"
    # The late answer is not taken for the next request's.
    await ws.send_json({"type": "screen/snapshot", "body": "bGF0ZQ==", "error": ""})
    later = asyncio.create_task(ask(session, bench, {"type": "screen/snapshot"}))
    assert (await next_request(ws))["type"] == "screen/snapshot"
    await ws.send_json({"type": "screen/snapshot", "body": "bm93", "error": ""})
    assert await later == (200, {"type": "screen/snapshot", "body": "bm93", "error": ""})
    # A request the device skips is forgotten once it answers a later one.
    skipped = await ask(session, bench, {"type": "key/down", "body": {"code": "HOMEBUTTON"}}, timeout=0.3)
    assert skipped[0] == 504
    assert (await next_request(ws))["type"] == "key/down"
    answered = asyncio.create_task(ask(session, bench, {"type": "key/up", "body": {"code": "HOMEBUTTON"}}))
    assert (await next_request(ws))["type"] == "key/up"
    await ws.send_json({"type": "key/up", "error": ""})
    assert await answered == (200, {"type": "key/up", "body": None, "error": ""})
    assert bench.hub.errors["control_late"] == 1 and bench.hub.errors["control_unanswered"] == 1


async def test_an_oversize_reply_is_refused_and_the_admin_told(make_bench, session):
    bench = await make_bench()
    ws = await online(session, bench)
    pending = asyncio.create_task(ask(session, bench, {"type": "file/get", "body": {"path": "/big"}}))
    assert (await next_request(ws))["type"] == "file/get"
    # Refused from the frame's header: the bench hangs up while it is still being sent.
    with contextlib.suppress(ConnectionError):
        await ws.send_str(json.dumps({"type": "file/get", "body": "A" * MAX_MESSAGE, "error": ""}))
    code, answer = await asyncio.wait_for(pending, TIMEOUT)
    assert code == 502 and "disconnected" in answer["error"] and "exceeds limit 8388608" in answer["error"], answer
    assert not (await status(session, bench))["online"]


def _verify(request, key=KEY, device=DEV):
    body = json.dumps(request.get("body"), sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    text = f"{device}\n{request['type']}\n{request['ts']}\n{request['nonce']}\n{body}"
    return hmac.compare_digest(request["sig"], hmac.new(key.encode(), text.encode(), hashlib.sha256).hexdigest())


def _sealed(reply, request, key=KEY, device=DEV):
    """A reply as a device with the key sends it (docs/protocols/cloud-control.md
    section 4), written here with the standard library's hmac."""
    text = json.dumps(reply)
    mac = hmac.new(key.encode(), f"{device}\nreply\n{request['nonce']}\n{text}".encode(), hashlib.sha256)
    return text[:-1] + f', "re": "{request["nonce"]}", "sig": "{mac.hexdigest()}"}}'


async def test_requests_are_signed_with_the_device_key(make_bench, session, tmp_path):
    bench = await make_bench(control_key=KEY)
    assert stat.S_IMODE(os.stat(bench.store.path).st_mode) == 0o600   # the key is in it
    ws = await connect(session, bench)
    first = await next_request(ws)
    assert first["type"] == "app/state" and "body" not in first and _verify(first)
    assert isinstance(first["ts"], int) and len(first["nonce"]) == 32
    await ws.send_str(_sealed({"type": "app/state", "body": STATE, "error": ""}, first))

    async def kept():
        return (await status(session, bench))["state"] == STATE
    await eventually(kept, "the signed app/state kept")
    body = {"path": "/d\u00e9j\u00e0/\u2603.txt", "data": "AAEC", "n": [1, True, None]}
    pending = asyncio.create_task(ask(session, bench, {"type": "file/put", "body": body}))
    req = await next_request(ws)
    assert req["body"] == body and _verify(req) and not _verify(req, key="another-key-0123456")
    assert req["nonce"] != first["nonce"]
    assert not _verify(req, device="another-door")   # signed for this door only
    device = Verifier(KEY, DEV)      # the agent's own check takes it, once
    assert device.check(req["type"], req, int(time.time())) is None
    assert "replayed" in device.check(req["type"], req, int(time.time()))
    await ws.send_str(_sealed({"type": "file/put", "error": ""}, req))
    assert (await pending) == (200, {"type": "file/put", "body": None, "error": ""})
    # A float cannot be signed alike on both runtimes: refused, never sent.
    code, answer = await ask(session, bench, {"type": "touch/down", "body": {"x": 1.5}})
    assert code == 400 and "float in signed body" in answer["error"]
    ping = asyncio.create_task(ask(session, bench, {"type": "touch/up", "body": {"finger": 1}}))
    touch = await next_request(ws)
    assert touch["type"] == "touch/up"      # the float request never reached it
    await ws.send_str(_sealed({"type": "touch/up", "error": ""}, touch))
    assert (await ping)[0] == 200


async def test_a_reply_not_signed_for_its_request_is_refused(make_bench, session):
    # A man in the middle of ws:// answering for the device: unsigned, signed
    # with another key or for another request, or altered on the way.
    bench = await make_bench(control_key=KEY)
    ws = await connect(session, bench)
    first = await next_request(ws)
    forged_state = dict(STATE, app={"version": "6.6.6", "license": ""})
    await ws.send_json({"type": "app/state", "body": forged_state, "error": ""})
    await asyncio.sleep(0.2)
    assert (await status(session, bench))["state"] is None        # the forged state is not kept
    good = _sealed({"type": "file/get", "body": {"data": "AAEC"}, "error": ""}, first)
    cases = [
        ("unsigned", lambda req: json.dumps({"type": "file/get", "body": {"data": "AAEC"}, "error": ""})),
        ("another key", lambda req: _sealed({"type": "file/get", "body": {"data": "AAEC"}, "error": ""}, req,
                                            key="another-key-0123456")),
        ("another device", lambda req: _sealed({"type": "file/get", "body": {"data": "AAEC"}, "error": ""}, req,
                                               device="another-door")),
        ("another request", lambda req: good),    # signed, but for the first request's nonce
        ("altered", lambda req: _sealed({"type": "file/get", "body": {"data": "AAEC"}, "error": ""}, req)
            .replace("AAEC", "AAED")),
    ]
    for what, reply in cases:
        pending = asyncio.create_task(ask(session, bench, {"type": "file/get", "body": {"path": "/a"}}))
        req = await next_request(ws)
        await ws.send_str(reply(req))
        code, answer = await pending
        assert code == 200 and answer["body"] is None and "not signed by the device" in answer["error"], what
    pending = asyncio.create_task(ask(session, bench, {"type": "file/get", "body": {"path": "/a"}}))
    req = await next_request(ws)
    await ws.send_str(_sealed({"type": "file/get", "body": {"data": "AAEC"}, "error": ""}, req))
    assert await pending == (200, {"type": "file/get", "body": {"data": "AAEC"}, "error": ""})
    assert bench.hub.errors["control_unsigned_reply"] == 1 + len(cases)


async def test_a_new_connection_replaces_the_old(make_bench, session):
    bench = await make_bench()
    old = await online(session, bench)
    pending = asyncio.create_task(ask(session, bench, {"type": "system/respring"}))
    assert (await next_request(old))["type"] == "system/respring"
    new = await online(session, bench)
    code, answer = await pending
    assert code == 502 and "before answering" in answer["error"]
    msg = await asyncio.wait_for(old.receive(), TIMEOUT)
    assert msg.type == WS.CLOSE and msg.data == 1008 and msg.extra == "replaced by a new connection"
    task = answering(new, lambda r: {"type": r["type"], "error": ""})
    assert (await ask(session, bench, {"type": "system/respring"}))[0] == 200
    task.cancel()


# -- doorlink control, end to end -----------------------------------------------------------

async def doorlink(*args, env=None):
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "host_tools.cli", "control", *args, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env={**os.environ, **(env or {})})
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    return proc.returncode, out.decode(), err.decode()


async def test_doorlink_control_end_to_end(make_bench, session, tmp_path):
    bench = await make_bench()
    ws = await online(session, bench)
    picture = bytes(range(256)) * 3
    seen = []

    def reply(req):
        seen.append(req)
        if req["type"] == "screen/snapshot":
            return {"type": req["type"], "body": base64.b64encode(picture).decode(), "error": ""}
        if req["type"] == "script/run":
            return {"type": req["type"], "error": "scripts are disabled on this device"}
        return {"type": req["type"], "body": STATE if req["type"] == "app/state" else None, "error": ""}
    task = answering(ws, reply)
    server = ["--server", bench.url]

    code, out, err = await doorlink(DEV, "app/state", *server)
    assert code == 0, err
    assert json.loads(out) == {"type": "app/state", "body": STATE, "error": ""}

    shot = tmp_path / "screen.png"
    code, out, err = await doorlink(DEV, "screen/snapshot", '{"format": "png", "scale": 100}', "--out", str(shot),
                                    *server)
    assert code == 0, err
    assert shot.read_bytes() == picture and f"wrote {len(picture)} bytes" in out

    upload = tmp_path / "notes.bin"
    upload.write_bytes(b"\x00\xffdoor")
    code, out, err = await doorlink(DEV, "file/put", '{"path": "/notes.bin"}', "--file", str(upload), *server)
    assert code == 0, err
    assert seen[-1]["body"] == {"path": "/notes.bin", "data": base64.b64encode(b"\x00\xffdoor").decode()}

    code, out, err = await doorlink(DEV, "script/run", '{"name": "a.py"}', *server)
    assert code == 1 and "scripts are disabled on this device" in err

    code, out, err = await doorlink("no-such-door", "app/state", *server)
    assert code == 1 and "no management channel" in err

    asked = len(seen)
    big = tmp_path / "big.bin"
    os.truncate(big.touch() or big, MAX_FILE + 1)      # sparse: no disk used
    for args in (("file/put", "{not json"), ("file/put", "[]", "--file", str(upload)),
                 ("file/put", "{}", "--file", str(big)), ("file/put", "{}", "--file", str(tmp_path / "missing")),
                 ("App State",)):
        code, out, err = await doorlink(DEV, *args, *server)
        assert code == 2 and err.startswith("error: ") and "Traceback" not in err, (args, err)
    assert len(seen) == asked                  # nothing wrong was sent
    task.cancel()


async def test_doorlink_control_wants_the_admin_token(make_bench, session):
    bench = await make_bench(require_auth=True)
    await online(session, bench)
    code, out, err = await doorlink(DEV, "app/state", "--server", bench.url, env={"DOORLINK_ADMIN_TOKEN": ""})
    assert code == 1 and "--token" in err


async def test_bench_add_device_takes_a_control_key(tmp_path):
    db = tmp_path / "keys.sqlite3"
    args = ["-m", "host_tools.cli", "bench", "add-device", "--db", str(db), "--id", DEV, "--token", TOKEN]
    for key, code, said in (("short", 2, "at least 16 characters"), (KEY, 0, "")):
        proc = await asyncio.create_subprocess_exec(sys.executable, *args, "--control-key", key,
                                                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        _, err = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == code and said in err.decode(), err
    assert db_rows(db, f"SELECT key FROM control_keys WHERE device_id = '{DEV}'") == [(KEY,)]
    assert stat.S_IMODE(os.stat(db).st_mode) == 0o600


def test_no_file_holding_a_control_key_is_readable_by_others(tmp_path):
    # Red team: the key reached the WAL file, made 0644 (umask 022) before
    # the database was made 0600, and it stayed so while the bench ran.
    from host_tools.bench.store import BenchStore
    old = os.umask(0o022)
    try:
        store = BenchStore(tmp_path / "b.sqlite3")
        store.add_device("plain-door", TOKEN)   # the WAL exists before any key
        store.add_device(DEV, TOKEN, control_key=KEY)
        holding = [p for p in tmp_path.iterdir() if KEY.encode() in p.read_bytes()]
        assert holding, "the key is in no file: the test proves nothing"
        assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in holding} == {p.name: 0o600 for p in holding}
        store.close()
    finally:
        os.umask(old)
