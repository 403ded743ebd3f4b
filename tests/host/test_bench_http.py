"""The bench's HTTP CloudSolution 3.0 endpoint, driven by the protocol
document's own Python device example (`requests` calls, payloads copied from
the document). The example device has a TOKEN it never sends; here it sends
it, as `Authorization: Bearer` (test_bench_auth.py: without it, and the
body's "token")."""

import asyncio
import json
import re
import time

import pytest
import requests

SN = "ZX12345678"  # the document's device serial number
TOKEN = "your-token"  # the document's device token
CLOUDTIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")  # "2026-06-12T10:30:00Z"
TIMEOUT = 5
WS_DEVICE = "door-ws-1"
BENCH_DEVICES = {SN: TOKEN, WS_DEVICE: "tok_ws"}  # registered in the shared bench fixture


async def post(bench, payload=None, **kw):
    """requests.post as the document's example calls it, off the event loop
    the bench runs on, with the device's token in a header."""
    if payload is not None:
        kw["json"] = payload
    sn = payload.get("sn") if isinstance(payload, dict) else None
    kw.setdefault("headers", {})["Authorization"] = "Bearer " + BENCH_DEVICES.get(sn, TOKEN)
    return await asyncio.to_thread(requests.post, f"{bench.http_url}/api/device-http", timeout=TIMEOUT, **kw)


# --- the document's example device, payloads verbatim --------------------------

def register_payload():
    return {
        "cmd": "reg",
        "sn": SN,
        "cpusn": "123456789",
        "devinfo": {
            "modelname": "device-1",
            "usersize": 1000,
            "firmware": "v1.0.0",
            "mac": "00:11:22:33:44:55",
        },
    }


def send_logs_payload(records):
    return {"cmd": "sendlog", "sn": SN, "count": len(records), "logindex": 0, "record": records}


def heartbeat_payload():
    return {"cmd": "checklive", "sn": SN, "time": time.strftime("%Y-%m-%dT%H:%M:%S")}


EXAMPLE_RECORDS = [{"enrollid": 1, "time": "2026-06-12T09:15:00", "mode": 1, "inout": 0, "event": 0}]


async def test_documented_example_device_gets_the_documented_replies(bench):
    resp = await post(bench, register_payload())
    assert resp.status_code == 200
    reply = resp.json()
    assert reply["ret"] == "reg" and reply["result"] is True and reply["nosenduser"] is True
    assert CLOUDTIME.match(reply["cloudtime"]), reply

    reply = (await post(bench, send_logs_payload(EXAMPLE_RECORDS))).json()
    assert reply["ret"] == "sendlog" and reply["result"] is True
    assert reply["count"] == 1 and reply["access"] == 1 and reply["logindex"] == 0
    assert CLOUDTIME.match(reply["cloudtime"])

    reply = (await post(bench, heartbeat_payload())).json()
    assert reply["ret"] == "checklive" and reply["result"] is True
    assert CLOUDTIME.match(reply["cloudtime"])

    rows = bench.store.punch_rows(SN)
    assert [(r["protocol"], r["log_id"], r["user_id"], r["punch_time"]) for r in rows] == [
        ("http", "0", "1", "2026-06-12T09:15:00")]
    assert rows[0]["fields"] == EXAMPLE_RECORDS[0]
    kinds = [k for k, _ in bench.events]
    assert "device_online" in kinds and "punch" in kinds


async def test_documented_sendlog_example_with_door_event(bench):
    # The document's sendlog request (temp, image) plus a door event record.
    records = [
        {"enrollid": 1, "time": "2026-06-12T09:15:30", "mode": 1, "inout": 0, "event": 0,
         "temp": 36.5, "image": "base64_encoded_photo"},
        {"enrollid": 2, "time": "2026-06-12T09:20:15", "mode": 0, "inout": 1, "event": 0, "temp": 36.8},
        {"enrollid": 0, "time": "2026-06-12T09:21:00", "mode": 0, "inout": 0, "event": 5},
    ]
    reply = (await post(bench, {"cmd": "sendlog", "sn": SN, "count": 3, "logindex": 10, "record": records})).json()
    assert reply == {"ret": "sendlog", "result": True, "count": 3, "logindex": 10,
                     "cloudtime": reply["cloudtime"], "access": 1}
    assert [r["log_id"] for r in bench.store.punch_rows(SN)] == ["10", "11"]
    assert bench.store.punch_rows(SN)[0]["fields"]["temp"] == 36.5
    events = bench.store.event_rows(SN)
    assert [(e["event_type"], e["record_id"]) for e in events] == [("forced_open", 12)]


async def test_resent_batch_is_acknowledged_and_stored_once(bench):
    batch = send_logs_payload([
        {"enrollid": 7, "time": "2026-06-12T09:15:00", "mode": 1, "inout": 0, "event": 0},
        {"enrollid": 0, "time": "2026-06-12T09:15:05", "mode": 0, "inout": 0, "event": 1},
    ])
    for _ in range(2):
        reply = (await post(bench, batch)).json()
        assert reply["result"] is True and reply["count"] == 2
    assert len(bench.store.punch_rows(SN)) == 1
    assert len(bench.store.event_rows(SN)) == 1
    assert [k for k, _ in bench.events].count("punch") == 1


async def test_unknown_device_is_refused_with_result_false(bench):
    for payload in (dict(register_payload(), sn="NOPE"), dict(send_logs_payload(EXAMPLE_RECORDS), sn="NOPE"),
                    dict(heartbeat_payload(), sn="NOPE")):
        resp = await post(bench, payload)
        assert resp.status_code == 200
        # The document's example device sends its token; an unknown sn is
        # answered like a wrong token (the reply must not confirm which
        # serial numbers exist).
        assert resp.json() == {"ret": payload["cmd"], "result": False,
                               "reason": "authentication failed for device NOPE"}
    assert bench.store.punch_rows() == []


BAD = [
    ({"data": b"{not json"}, "error", "not JSON"),
    ({"data": b"\xff\xfe"}, "error", "not JSON"),
    ({"data": b"NaN"}, "error", "not JSON"),
    ({"json": [1, 2]}, "error", "JSON object"),
    ({"json": {"sn": SN}}, "error", "missing field 'cmd'"),
    ({"json": {"cmd": "launch", "sn": SN}}, "launch", "unknown cmd 'launch'"),
    ({"json": {"cmd": "reg"}}, "reg", "'sn'"),
    ({"json": {"cmd": "sendlog", "sn": SN, "logindex": 0, "record": []}}, "sendlog", "missing field 'count'"),
    ({"json": {"cmd": "sendlog", "sn": SN, "count": 0, "logindex": 0}}, "sendlog", "missing field 'record'"),
    ({"json": {"cmd": "sendlog", "sn": SN, "count": 2, "logindex": 0, "record": EXAMPLE_RECORDS}},
     "sendlog", "count is 2 but 'record' holds 1"),
    ({"json": {"cmd": "sendlog", "sn": SN, "count": 1, "logindex": -1, "record": EXAMPLE_RECORDS}},
     "sendlog", "'logindex'"),
    ({"json": {"cmd": "sendlog", "sn": SN, "count": 1, "logindex": 0, "record": ["x"]}},
     "sendlog", "record 0 must be a JSON object"),
    ({"json": {"cmd": "sendlog", "sn": SN, "count": 1, "logindex": 0, "record": [{"enrollid": 1}]}},
     "sendlog", "record 0: field 'time'"),
    ({"json": {"cmd": "sendlog", "sn": SN, "count": 1, "logindex": 0,
               "record": [{"enrollid": 0, "time": "2026-06-12T09:15:00", "event": 9}]}},
     "sendlog", "needs 'event' 0-7"),
]


@pytest.mark.parametrize("kw, ret, words", BAD, ids=[w for _, _, w in BAD])
async def test_bad_input_is_400_with_a_reason_and_the_bench_still_answers(bench, kw, ret, words):
    resp = await post(bench, **kw)
    assert resp.status_code == 400
    reply = resp.json()
    assert reply["ret"] == ret and reply["result"] is False and words in reply["reason"], reply
    assert bench.store.punch_rows() == []
    assert (await post(bench, heartbeat_payload())).json()["result"] is True


async def test_body_over_1mb_is_refused(bench):
    big = send_logs_payload([dict(EXAMPLE_RECORDS[0], image="x" * (1 << 20))])
    resp = await post(bench, big)
    assert resp.status_code == 400
    assert "over the 1048576 byte limit" in resp.json()["reason"]

    def chunked():  # no Content-Length: the limit holds while reading
        body = json.dumps(big).encode()
        for i in range(0, len(body), 65536):
            yield body[i:i + 65536]
    resp = await post(bench, data=chunked(), headers={"Content-Type": "application/json"})
    assert resp.status_code == 400 and "limit" in resp.json()["reason"]
    assert bench.store.punch_rows() == []
    assert (await post(bench, heartbeat_payload())).json()["result"] is True


async def test_a_request_cannot_take_over_a_device_online_over_a_websocket(bench, session):
    # CloudSolution requests carry no credential: naming a serial number must
    # not close a device's authenticated link or take its commands.
    ws = await session.ws_connect(bench.url)
    await ws.send_json({"type": "register", "device_id": WS_DEVICE, "token": "tok_ws"})
    assert json.loads((await ws.receive()).data)["type"] == "registered"
    reply = (await post(bench, {"cmd": "checklive", "sn": WS_DEVICE, "time": "2026-06-12T09:30:00"})).json()
    assert reply == {"ret": "checklive", "result": False, "reason": "device is connected over another protocol"}
    await ws.send_json({"type": "ping"})
    assert json.loads((await ws.receive()).data) == {"type": "pong"}  # still its link
    assert bench.hub.devices[WS_DEVICE].protocol == "json_ws"
    await ws.close()
