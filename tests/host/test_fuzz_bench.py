"""The hostile-input suite for the bench's three device protocols: hypothesis
sends a real bench on 127.0.0.1 hostile messages, built from each
protocol's own messages (tests/fuzz_corpus.py: fields dropped, retyped and
added, values from the protocol's vocabulary and beyond, bytes mutated),
on `/ws` (JSON and XML: the first character picks the protocol) and on
`POST /api/device-http` (CloudSolution), from a stranger and from a
device that registered with its token.

Every input is answered, or counted where the protocol has no answer, or
the connection is closed with a code and a reason: never an HTTP 500,
never a silent drop, never an internal error, within TIMEOUT. Afterwards
nothing in the log is an error or a traceback, the SQLite passes
`PRAGMA integrity_check`, and a well-behaved device that stayed connected
throughout still delivers a record and hears it acknowledged. One bench
per test, shared by its examples; examples and frames are bounded."""

import asyncio
import json
import logging
import secrets
import sqlite3

import aiohttp
import fuzz_corpus as fc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.codecs import xml_flat
from host_tools.bench import strict_json

DEV, TOKEN = "fuzz-door-1", "tok_fuzz_door"
SERIAL, CLOUD_ID = "FK-FUZZ-1", "cloud_fuzz"
SN, SN_TOKEN = "ZX-FUZZ-1", "tok_fuzz_terminal"
GOOD, GOOD_TOKEN = "good-door-1", "tok_good_door"
BENCH_DEVICES = {DEV: TOKEN, SERIAL: CLOUD_ID, SN: SN_TOKEN, GOOD: GOOD_TOKEN}
TIMEOUT = 5
MAX_FRAMES = 4          # hostile frames per connection (per example)
CLOSE_CODES = {1000, 1001, 1008, 1009, 1013}   # 1011 (internal error) is a defect
FUZZ = settings(max_examples=100, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

# -- what devices (and admins) send the bench, valid, where the mutations start ---------------

TIME = 1781255730
JSON_SEEDS = [json.dumps(m).encode() for m in (
    {"type": "register", "device_id": DEV, "token": TOKEN},
    {"type": "register", "device_id": GOOD, "token": "not-its-token"},
    {"type": "register", "device_id": "nobody", "token": TOKEN},
    {"type": "subscribe", "role": "admin", "token": "adm_wrong"},
    {"type": "telemetry", "device_id": DEV, "payload": {"temperature": 21.5, "humidity": 40}, "id": 1, "time": TIME},
    {"type": "event", "device_id": DEV, "event_type": "door_opened", "payload": {"door": "front"}, "id": 2,
     "time": TIME},
    {"type": "event", "event_type": "punch", "payload": {"user": "7", "time": "2026-06-12T09:15:30"}, "id": 3},
    {"type": "event", "event_type": "command_result", "payload": {"command": "status", "ok": True, "id": "c1"}},
    {"type": "ping"},
    {"type": "pong"},
    {"type": "subscribe", "role": "admin"},
    {"type": "command", "device_id": DEV, "command": "unlock", "payload": {"duration_ms": 500}, "id": "c2"},
    {"type": "command", "device_id": SERIAL, "command": "set_time", "payload": {"time": "2026-06-12T09:15:30"}},
    {"type": "command", "device_id": SN, "command": "set_time", "payload": {"epoch": 10 ** 18}},
)]
JSON_KEYS = ["type", "device_id", "token", "payload", "id", "time", "event_type", "role", "command", "status",
             "temperature", "user", "ok"]

XML_SEEDS = [xml_flat.encode(root, fields).encode() for root, fields in (
    ("Request", [("Operation", "Register"), ("DeviceSerialNo", SERIAL), ("CloudId", CLOUD_ID),
                 ("TerminalType", "doorlink")]),
    ("Request", [("Operation", "Register"), ("DeviceSerialNo", GOOD), ("CloudId", CLOUD_ID)]),
    ("Request", [("Operation", "TimeLog_v2"), ("LogId", "7"), ("UserId", "EMP1"),
                 ("PunchTime", "2026-05-12T09:15:30"), ("GMT", "8"), ("AttendStat", "0"), ("APStat", "1"),
                 ("Action", "FP"), ("JobCode", "0")]),
    ("Request", [("Operation", "AdminLog_v2"), ("LogId", "8"), ("AdminId", "ADMIN"), ("UserId", "EMP1"),
                 ("Action", "EnrollFP"), ("Time", "2026-05-12T10:30:00")]),
    ("Request", [("Operation", "KeepAlive")]),
    ("Response", [("Operation", "LockControl"), ("TransID", "c1"), ("Result", "success")]),
    ("Response", [("Operation", "GetDeviceStatus"), ("TransID", "c2"), ("Result", "Fail"), ("Reason", "busy")]),
)]
XML_TAGS = ["Operation", "DeviceSerialNo", "CloudId", "LogId", "UserId", "PunchTime", "Time", "GMT", "AttendStat",
            "Action", "AdminId", "TransID", "Result", "Reason", "Session", "Request", "Response", "Photo"]
XML_WORDS = fc.XML_WORDS + [SERIAL, CLOUD_ID, DEV, GOOD, "EnrollFP", "FP", "ADMIN", "9" * 30, "0" * 20]

PUNCH = {"enrollid": 1, "time": "2026-06-12T09:15:00", "mode": 1, "inout": 0, "event": 0}
DOOR = {"enrollid": 0, "time": "2026-06-12T09:15:05", "mode": 0, "inout": 0, "event": 1}
HTTP_SEEDS = [json.dumps(m).encode() for m in (
    {"cmd": "reg", "sn": SN, "cpusn": SN, "devinfo": {"modelname": "fuzz", "fpsize": 300}},
    {"cmd": "checklive", "sn": SN, "time": "2026-06-12 09:15:00"},
    {"cmd": "sendlog", "sn": SN, "count": 2, "logindex": 10, "record": [PUNCH, DOOR]},
    {"cmd": "sendlog", "sn": SN, "count": 1, "logindex": 0, "record": [dict(PUNCH, enrollid="EMP1", temp=36.6)]},
    {"ret": "opendoor", "sn": SN, "result": True},
    {"ret": "gettime", "sn": SN, "result": 1, "time": "2026-06-12 09:15:00"},
)]
HTTP_KEYS = ["cmd", "ret", "sn", "token", "count", "logindex", "record", "result", "reason", "devinfo", "enrollid",
             "time", "mode", "inout", "event", "temp", "cpusn"]


def _chooser(data):
    return lambda n: data.draw(st.integers(0, n - 1)) if n > 1 else 0


def _mutated(data, raw, seeds, tokens):
    """Byte-level damage on top, one input in three."""
    choose = _chooser(data)
    if choose(3) == 0:
        for _ in range(1 + choose(2)):
            raw = fc.mutate_once(raw, choose, tokens, seeds)[:fc.MAX_INPUT]
    return raw


def _json(data, seeds, keys):
    """A seed as it is, with one field off, or with several."""
    choose = _chooser(data)
    level = choose(4)
    if level == 0:
        return fc._pick(seeds, choose)
    return _mutated(data, fc.json_message(seeds, choose, keys, ops=1 if level < 3 else None), seeds,
                    fc.TOKENS["json"])


@st.composite
def ws_frames(draw):
    """One hostile frame for /ws: JSON or XML text, structured then
    mutated, or now and then binary."""
    data = draw(st.data())
    choose = _chooser(data)
    kind = choose(10)
    if kind < 5:
        raw = _json(data, JSON_SEEDS, JSON_KEYS + fc.JSON_KEYS[:8])
    elif kind < 7:
        raw = _mutated(data, fc.xml_variant(XML_SEEDS, choose, XML_TAGS, XML_WORDS), XML_SEEDS, fc.TOKENS["xml"])
    elif kind < 9:
        raw = _mutated(data, fc.xml_message(choose, XML_TAGS, XML_WORDS), XML_SEEDS, fc.TOKENS["xml"])
    else:
        return draw(st.binary(max_size=200))   # a binary frame: the protocols are text
    return raw.decode("utf-8", "replace")


@st.composite
def http_requests(draw):
    """(body bytes, headers) for POST /api/device-http."""
    data = draw(st.data())
    if draw(st.integers(0, 9)) == 0:
        content_type = draw(st.sampled_from(["application/json", "text/plain"]))
        return draw(st.binary(max_size=200)), {"Content-Type": content_type}
    auth = draw(st.sampled_from(["none", "field", "field", "header", "header", "wrong", "both", "bad-scheme"]))
    body = _json(data, HTTP_SEEDS, HTTP_KEYS)
    if auth in ("field", "both"):
        try:
            msg = json.loads(body)
        except ValueError:
            pass
        else:
            if isinstance(msg, dict):
                msg["token"] = SN_TOKEN
                body = json.dumps(msg).encode()
    headers = {"header": {"Authorization": f"Bearer {SN_TOKEN}"}, "both": {"Authorization": f"Bearer {SN_TOKEN}"},
               "wrong": {"Authorization": "Bearer tok_wrong"}, "bad-scheme": {"Authorization": "Basic eDp5"}}
    return body, {"Content-Type": "application/json", **headers.get(auth, {})}


# -- the bench's side: what must hold afterwards --------------------------------------------

@pytest.fixture
async def fuzzed(bench, caplog):
    """The bench, a well-behaved device connected to it throughout, and
    the checks that close every test: no error in the log, no internal
    error counted, the SQLite intact, and the device still served."""
    caplog.set_level(logging.DEBUG)
    async with aiohttp.ClientSession() as session:
        good = await asyncio.wait_for(session.ws_connect(bench.url), TIMEOUT)
        await good.send_json({"type": "register", "device_id": GOOD, "token": GOOD_TOKEN})
        assert json.loads(await _text(good))["type"] == "registered"
        bench.fuzz_session = session
        yield bench
        bad = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info or "Traceback" in r.getMessage()]
        assert not bad, [f"{r.name} {r.levelname}: {r.getMessage()[:300]}" for r in bad[:5]]
        assert bench.stats["errors"].get("internal", 0) == 0, bench.stats
        con = sqlite3.connect(bench.db_path)
        try:
            assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        finally:
            con.close()
        # The device that stayed connected through all of it is still served.
        assert not good.closed, (good.close_code, "the fuzz dropped a well-behaved device")
        rid = 10 ** 6 + secrets.randbelow(10 ** 6)
        await good.send_json({"type": "event", "event_type": "door_opened", "payload": {"door": "front"},
                              "id": rid, "time": TIME})
        for _ in range(200):   # admins' commands may come first: the fuzz sent some
            msg = json.loads(await _text(good))
            if msg.get("type") == "ack":
                break
        assert msg == {"type": "ack", "id": rid}, msg
        assert any(r["record_id"] == rid for r in bench.store.event_rows(GOOD))
        await good.close()


async def _text(ws):
    msg = await asyncio.wait_for(ws.receive(), TIMEOUT)
    assert msg.type == aiohttp.WSMsgType.TEXT, (msg.type, msg.data, msg.extra)
    return msg.data


# -- /ws: JSON and XML ------------------------------------------------------------------------

def _silent_by_protocol(frame):
    """A valid message the protocol answers with nothing: a pong, an
    admin's subscribe or command, a device's record without an id (no ack
    is due), a terminal's Response to a command."""
    if isinstance(frame, bytes):
        return False
    if frame.lstrip().startswith("<"):
        try:
            return xml_flat.decode(frame, max_bytes=1 << 20)[0] == "Response"
        except xml_flat.XmlError:
            return False
    try:
        msg = strict_json.parse(frame)
    except ValueError:
        return False
    return isinstance(msg, dict) and msg.get("type") in ("pong", "subscribe", "command", "telemetry", "event")


async def _register(ws, mode):
    if mode == "json":
        await ws.send_json({"type": "register", "device_id": DEV, "token": TOKEN})
        assert json.loads(await _text(ws))["type"] == "registered"
    elif mode == "xml":
        await ws.send_str(XML_SEEDS[0].decode())
        assert "<Result>success</Result>" in await _text(ws)


async def _until_probe(ws, nonce):
    """Every frame up to the answer to the probe -> (texts before it, None),
    or (texts, (close code, reason)) when the bench closed the link."""
    texts = []
    while True:
        msg = await asyncio.wait_for(ws.receive(), TIMEOUT)
        if msg.type == aiohttp.WSMsgType.TEXT:
            if f"<Operation>Probe_{nonce}</Operation>" in msg.data:
                return texts, None
            texts.append(msg.data)
        elif msg.type == aiohttp.WSMsgType.CLOSE:
            return texts, (msg.data, msg.extra)
        else:
            raise AssertionError(f"the link ended without a close frame: {msg.type} {msg.data!r}")


async def _fuzz_ws(bench, mode, frames):
    hub = bench.hub
    ws = await asyncio.wait_for(bench.fuzz_session.ws_connect(bench.url), TIMEOUT)
    try:
        await _register(ws, mode)
        for frame in frames:
            # The probe, an XML request no peer sends, is answered Fail on
            # any link (and counted): what came before it answers the frame.
            nonce = secrets.token_hex(6)
            errors = sum(hub.errors.values())
            await (ws.send_bytes(frame) if isinstance(frame, bytes) else ws.send_str(frame))
            await ws.send_str(f"<Request><Operation>Probe_{nonce}</Operation></Request>")
            texts, closed = await _until_probe(ws, nonce)
            if closed is not None:
                code, reason = closed
                assert code in CLOSE_CODES and reason, (f"closed {code} {reason!r}", frame[:200])
                return
            counted = sum(hub.errors.values()) - errors - 1
            assert texts or counted > 0 or _silent_by_protocol(frame), ("neither answered nor counted", frame[:300])
    finally:
        await ws.close()


@pytest.mark.parametrize("mode", ["stranger", "json", "xml"])
@FUZZ
@given(frames=st.lists(ws_frames(), min_size=1, max_size=MAX_FRAMES))
async def test_ws_hostile_frames_are_answered_or_closed_with_a_reason(fuzzed, mode, frames):
    await _fuzz_ws(fuzzed, mode, frames)


async def test_ws_frames_past_the_size_limits(fuzzed):
    # Over the bench's message limit: answered; over aiohttp's hard cap: closed 1009.
    big = {"type": "telemetry", "payload": {"x": "y" * (fuzzed.hub.max_message + 10)}}
    await _fuzz_ws(fuzzed, "json", [json.dumps(big), "<Request>" + "<a>x</a>" * 10000 + "</Request>"])
    ws = await fuzzed.fuzz_session.ws_connect(fuzzed.url, max_msg_size=0)
    await ws.send_str("[" * (2 << 20))
    msg = await asyncio.wait_for(ws.receive(), TIMEOUT)
    assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 1009, (msg.type, msg.data)
    await ws.close()


# -- CloudSolution over HTTP --------------------------------------------------------------------

@FUZZ
@given(requests=st.lists(http_requests(), min_size=1, max_size=MAX_FRAMES))
async def test_http_hostile_requests_are_answered_with_a_reason(fuzzed, requests):
    url = f"{fuzzed.http_url}/api/device-http"
    for body, headers in requests:
        async with fuzzed.fuzz_session.post(url, data=body, headers=headers,
                                            timeout=aiohttp.ClientTimeout(total=TIMEOUT)) as r:
            assert r.status < 500, (r.status, await r.text(), body[:200])
            reply = await r.json(content_type=None)
        assert isinstance(reply, dict) and reply.get("result") in (True, False) and "ret" in reply, reply
        if reply["result"] is False:
            assert isinstance(reply.get("reason"), str) and reply["reason"], reply
        if reply["result"] is True:   # taken: only from the device, with its token
            assert SN_TOKEN.encode() in body or headers.get("Authorization") == f"Bearer {SN_TOKEN}", (body, reply)
