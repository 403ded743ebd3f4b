"""Hostile input against the bench's three device protocols: every error is
answered (or the link closed) with a reason and counted, never a traceback
or an HTTP 500, and the bench keeps serving; a record whose key is stored
with other content is a conflict, kept for a human and never acknowledged;
a CloudSolution batch is stored whole or not at all."""

import asyncio
import json
import logging

import aiohttp
import pytest
import requests

from host_tools.bench import BenchStore

DEV = "hostile-door-1"
TOKEN = "tok_hostile"
SERIAL = "FK-HOSTILE-1"
CLOUD_ID = "cloud_hostile"
SN = "ZX-HOSTILE-1"
SN_TOKEN = "tok_hostile_http"
BENCH_DEVICES = {DEV: TOKEN, SERIAL: CLOUD_ID, SN: SN_TOKEN}
TIMEOUT = 5


@pytest.fixture(autouse=True)
def no_tracebacks(caplog):
    """Whatever a test sends, nothing the bench or aiohttp logs carries a traceback."""
    caplog.set_level(logging.DEBUG)
    yield
    bad = [r for r in caplog.records if r.exc_info or "Traceback" in r.getMessage()]
    assert not bad, [f"{r.name}: {r.getMessage()}" for r in bad]


async def recv(ws):
    msg = await asyncio.wait_for(ws.receive(), TIMEOUT)
    assert msg.type == aiohttp.WSMsgType.TEXT, f"expected text, got {msg.type} {msg.data!r}"
    return msg.data


async def device(session, bench):
    ws = await asyncio.wait_for(session.ws_connect(bench.url), TIMEOUT)
    await ws.send_json({"type": "register", "device_id": DEV, "token": TOKEN})
    assert json.loads(await recv(ws))["type"] == "registered"
    return ws


async def still_alive(ws):
    await ws.send_json({"type": "ping"})
    assert json.loads(await recv(ws)) == {"type": "pong"}


def post(bench, body, token=SN_TOKEN):
    """One CloudSolution request (raw bytes, or an object sent as JSON)."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    r = requests.post(f"{bench.http_url}/api/device-http", data=data, timeout=TIMEOUT,
                      headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
    return r.status_code, r.json()


def sendlog(logindex, records):
    return {"cmd": "sendlog", "sn": SN, "count": len(records), "logindex": logindex, "record": records}


PUNCH = {"enrollid": 1, "time": "2026-06-12T09:15:00", "mode": 1, "inout": 0, "event": 0}
DOOR = {"enrollid": 0, "time": "2026-06-12T09:15:05", "mode": 0, "inout": 0, "event": 1}


# -- JSON WebSocket -------------------------------------------------------------------

JSON_BAD = [
    ('{"type": "event", "event_type": "x", "id": 9223372036854775808}', "invalid",
     "'id' (a record id) is out of range"),
    ('{"type": "event", "event_type": "x", "id": 1, "time": 1%s}' % ("0" * 400), "invalid",
     "'time' is out of range"),
    ('{"type": "event", "event_type": "x", "id": 1, "time": 1e400}', "malformed_json", "out of range"),
    ('{"type": "telemetry", "payload": {"t": -1e400}}', "malformed_json", "out of range"),
    ('{"type": "telemetry", "payload": {"t": "\\ud800"}}', "malformed_json", "lone surrogate"),
    ('{"type": "telemetry", "payload": {"\\udfff": 1}}', "malformed_json", "lone surrogate"),
    ('{"type": "event", "event_type": "\\ud800x", "payload": {}}', "malformed_json", "lone surrogate"),
    ('{"type": "telemetry", "payload": %s1%s}' % ('{"a": ' * 100, "}" * 100), "malformed_json",
     "nesting deeper than 64"),
    ('{"type": "telemetry", "payload": {"t": [%s]}}' % ("[" * 5000 + "]" * 5000), "malformed_json", "nesting"),
]


@pytest.mark.parametrize("frame, kind, words", JSON_BAD, ids=[w for _, _, w in JSON_BAD])
async def test_json_input_errors_are_answered_and_counted(bench, session, frame, kind, words):
    dev = await device(session, bench)
    await dev.send_str(frame)
    err = json.loads(await recv(dev))
    assert err["type"] == "error" and words in err["message"], err
    await still_alive(dev)
    assert bench.stats["errors"] == {kind: 1}
    assert bench.store.telemetry_rows() == [] and bench.store.event_rows() == []


@pytest.mark.parametrize("device_id", ["\\ud800", "door\\udc00"])
async def test_a_lone_surrogate_in_a_device_id_is_refused_cleanly(bench, session, device_id):
    ws = await session.ws_connect(bench.url)
    await ws.send_str('{"type": "register", "device_id": "%s", "token": "x"}' % device_id)
    err = json.loads(await recv(ws))
    assert err["type"] == "error" and "lone surrogate" in err["message"]
    await still_alive(ws)
    await device(session, bench)


async def test_the_largest_record_id_and_real_times_are_fine(bench, session):
    dev = await device(session, bench)
    big = (1 << 63) - 1
    await dev.send_json({"type": "event", "event_type": "x", "id": big, "time": 253402300799})
    assert json.loads(await recv(dev)) == {"type": "ack", "id": big}
    await dev.send_json({"type": "telemetry", "payload": {"n": 10 ** 40}, "id": 2, "time": 0})
    assert json.loads(await recv(dev)) == {"type": "ack", "id": 2}
    assert bench.store.event_rows(DEV)[0]["record_id"] == big
    assert bench.store.telemetry_rows(DEV)[0]["payload"] == {"n": 10 ** 40}


async def test_json_conflict_is_not_a_duplicate(bench, session):
    dev = await device(session, bench)
    rec = {"type": "event", "event_type": "door_opened", "payload": {"door": "front"}, "id": 41, "time": 1781255730}
    await dev.send_json(rec)
    assert json.loads(await recv(dev)) == {"type": "ack", "id": 41}
    await dev.send_json(rec)  # the same again: a resend, acknowledged again
    assert json.loads(await recv(dev)) == {"type": "ack", "id": 41}
    for other in (dict(rec, payload={"door": "back"}), dict(rec, event_type="door_closed"), dict(rec, time=1)):
        await dev.send_json(other)
        err = json.loads(await recv(dev))
        assert err["type"] == "error" and err["id"] == 41, err
        assert err["message"].startswith(f"conflict: event 41 of {DEV} is already stored with other content")
    await dev.send_json(dict(rec, payload={"door": "back"}))  # offered again: counted, kept once
    assert json.loads(await recv(dev))["type"] == "error"
    assert bench.stats["errors"] == {"conflict": 4} and bench.hub.duplicates == 1
    assert [r["payload"] for r in bench.store.event_rows(DEV)] == [{"door": "front"}]
    conflicts = bench.store.conflict_rows(DEV)
    assert [(c["kind"], c["record_key"], c["times"]) for c in conflicts] == [
        ("event", "41", 2), ("event", "41", 1), ("event", "41", 1)]
    assert conflicts[0]["stored"]["payload"] == {"door": "front"} and conflicts[0]["offered"]["payload"] == {
        "door": "back"}
    async with session.get(f"{bench.http_url}/api/records/{DEV}", params={"kind": "conflict"}) as r:
        assert r.status == 200 and len(await r.json()) == 3
    await still_alive(dev)


async def test_a_json_key_order_is_not_a_conflict(bench, session):
    dev = await device(session, bench)
    await dev.send_str('{"type": "telemetry", "payload": {"a": 1, "b": 2.0}, "id": 5}')
    await dev.send_str('{"type": "telemetry", "payload": {"b": 2, "a": 1}, "id": 5}')
    assert [json.loads(await recv(dev)) for _ in range(2)] == [{"type": "ack", "id": 5}] * 2
    assert bench.stats["errors"] == {}


# -- XML ---------------------------------------------------------------------------------

REGISTER = ("<Request><Operation>Register</Operation><DeviceSerialNo>%s</DeviceSerialNo><CloudId>%s</CloudId>"
            "</Request>" % (SERIAL, CLOUD_ID))
TIMELOG = ("<Request><Operation>TimeLog_v2</Operation><LogId>L1</LogId><UserId>%s</UserId>"
           "<PunchTime>2026-05-12T09:15:30</PunchTime></Request>")


async def test_xml_conflict_is_fail_with_a_reason(bench, session):
    ws = await session.ws_connect(bench.url)
    await ws.send_str(REGISTER)
    assert "<Result>success</Result>" in await recv(ws)
    await ws.send_str(TIMELOG % "EMP1")
    assert "<Result>success</Result>" in await recv(ws)
    await ws.send_str(TIMELOG % "EMP1")
    assert "<Result>success</Result>" in await recv(ws)   # a resend
    await ws.send_str(TIMELOG % "EMP2")
    reply = await recv(ws)
    assert "<Result>Fail</Result>" in reply and "<LogId>L1</LogId>" in reply
    assert f"<Reason>conflict: punch L1 of {SERIAL} is already stored with other content" in reply
    assert [r["user_id"] for r in bench.store.punch_rows(SERIAL)] == ["EMP1"]
    assert bench.store.conflict_rows(SERIAL)[0]["offered"]["user_id"] == "EMP2"
    assert bench.stats["errors"] == {"conflict": 1}


async def test_xml_character_references_to_surrogates_are_refused(bench, session):
    ws = await session.ws_connect(bench.url)
    await ws.send_str(REGISTER)
    await recv(ws)
    await ws.send_str(TIMELOG % "&#xD800;")
    reply = await recv(ws)
    assert "<Result>Fail</Result>" in reply and "not an XML character" in reply
    assert bench.store.punch_rows() == []


# -- CloudSolution ---------------------------------------------------------------------

HTTP_BAD = [
    (sendlog((1 << 63) - 1, [PUNCH, DOOR]), "'logindex' is out of range"),
    (sendlog(1 << 63, [PUNCH]), "'logindex' is out of range"),
    (b'{"cmd": "checklive", "sn": "\\ud800"}', "lone surrogate"),
    (b'{"cmd": "reg", "sn": "%s", "devinfo": {"x": "\\udc00"}}' % SN.encode(), "lone surrogate"),
    (b'{"cmd": "sendlog", "sn": "%s", "count": 1, "logindex": 1, "record": [{"enrollid": 1, "time": "t", '
     b'"temp": 1e400}]}' % SN.encode(), "out of range"),
    ({"cmd": "reg", "sn": SN, "token": ""}, "'token' must be a non-empty string"),
]


@pytest.mark.parametrize("body, words", HTTP_BAD, ids=[w for _, w in HTTP_BAD])
async def test_cloudsolution_input_errors_are_400_with_a_reason(bench, body, words):
    status, reply = await asyncio.to_thread(post, bench, body)
    assert status == 400 and reply["result"] is False and words in reply["reason"], reply
    assert bench.store.punch_rows() == [] and bench.store.event_rows() == []
    assert bench.stats["errors"] == {"http_invalid": 1}
    assert (await asyncio.to_thread(post, bench, {"cmd": "reg", "sn": SN}))[1]["result"] is True


async def test_a_batch_that_fails_part_way_stores_nothing(bench, monkeypatch):
    real = BenchStore.add_event

    def broken(self, *args, **kw):
        raise OverflowError("Python int too large to convert to SQLite INTEGER")
    monkeypatch.setattr(BenchStore, "add_event", broken)
    status, reply = await asyncio.to_thread(post, bench, sendlog(1, [PUNCH, PUNCH, DOOR]))
    assert status == 400 and reply["result"] is False and "could not process" in reply["reason"], reply
    assert bench.store.punch_rows() == [] and bench.stats["errors"] == {"internal": 1}
    monkeypatch.setattr(BenchStore, "add_event", real)
    status, reply = await asyncio.to_thread(post, bench, sendlog(1, [PUNCH, PUNCH, DOOR]))
    assert reply["result"] is True and reply["count"] == 3
    assert [r["log_id"] for r in bench.store.punch_rows(SN)] == ["1", "2"]


async def test_forged_punches_do_not_make_the_genuine_batch_a_duplicate(bench):
    # Someone posts two punches at logindex 20 first (here with the token:
    # the same holds for a trust-sn-only bench). The terminal's real batch
    # for that index must not be answered "taken" and then trimmed.
    forged = [dict(PUNCH, enrollid=666), dict(PUNCH, enrollid=667)]
    assert (await asyncio.to_thread(post, bench, sendlog(20, forged)))[1]["count"] == 2
    genuine = [dict(PUNCH, enrollid=1), dict(PUNCH, enrollid=2)]
    status, reply = await asyncio.to_thread(post, bench, sendlog(20, genuine))
    assert status == 200 and reply["result"] is False and "count" not in reply
    assert reply["reason"].startswith(f"conflict: punch 20 of {SN} is already stored with other content")
    # Resends of what is stored are duplicates, acknowledged again.
    status, reply = await asyncio.to_thread(post, bench, sendlog(19, [dict(PUNCH, enrollid=3), forged[0]]))
    assert (reply["result"], reply["count"]) == (True, 2)   # 19 is new, 20 as stored
    # A batch whose second record conflicts is taken up to it.
    status, reply = await asyncio.to_thread(post, bench, sendlog(18, [dict(PUNCH, enrollid=7),
                                                                       dict(PUNCH, enrollid=8)]))
    assert (reply["result"], reply["count"]) == (True, 1) and reply["reason"].startswith("conflict: punch 19")
    stored = {r["log_id"]: r["user_id"] for r in bench.store.punch_rows(SN)}
    assert stored == {"18": "7", "19": "3", "20": "666", "21": "667"}
    offered = sorted((c["record_key"], c["offered"]["user_id"]) for c in bench.store.conflict_rows(SN))
    assert offered == [("19", "8"), ("20", "1")]
    assert bench.stats["errors"] == {"conflict": 2}


async def test_api_paths_with_undecodable_names_are_answered(bench, session):
    async with session.get(f"{bench.http_url}/api/records/%ED%A0%80?kind=punch") as r:
        assert r.status in (200, 400, 404) and r.status != 500
    async with session.get(f"{bench.http_url}/api/records/%FF?kind=event") as r:
        assert r.status != 500


async def test_a_reason_quoting_control_characters_is_still_xml(bench, session):
    # Found by test_fuzz_bench.py: the Fail reason quoted the peer's "<R\x1e",
    # which XML cannot carry, and the bench closed 1011 instead of answering.
    ws = await session.ws_connect(bench.url)
    await ws.send_str("<R\x1e<Request><Operation>Register</Operation></Request>")
    reply = await recv(ws)
    assert "<Result>Fail</Result>" in reply and "\\u001e" in reply and "\x1e" not in reply
    assert bench.stats["errors"].get("internal", 0) == 0
    await ws.send_str(REGISTER)
    assert "<Result>success</Result>" in await recv(ws)    # the link lives on


async def test_a_peer_gone_while_answered_is_not_a_bench_error(bench, monkeypatch, caplog):
    # aiohttp raises ConnectionResetError ("Cannot write to closing
    # transport") into a handler whose peer hung up: counted as the peer's,
    # never logged as the bench failing.
    def gone(self, *args, **kw):
        raise ConnectionResetError("Cannot write to closing transport")
    monkeypatch.setattr(BenchStore, "add_punch", gone)
    with pytest.raises(OSError):
        await asyncio.to_thread(post, bench, sendlog(1, [PUNCH]))
    assert bench.stats["errors"] == {"peer_gone": 1}
    assert "could not process" not in caplog.text
