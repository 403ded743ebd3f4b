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

from secret_leaks import leaks

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
    assert [(e["event_type"], e["record_id"]) for e in events] == [("door_forced", 12)]


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


async def _admin(session, bench):
    adm = await session.ws_connect(bench.url)
    await adm.send_json({"type": "subscribe", "role": "admin"})
    return adm


async def _heard(adm, command_id):
    """The command_result (or error) an admin hears for command_id."""
    while True:
        msg = json.loads((await asyncio.wait_for(adm.receive(), TIMEOUT)).data)
        if msg.get("type") == "error":
            return msg
        if msg.get("event_type") == "command_result" and msg["payload"]["id"] == command_id:
            return msg["payload"]


async def test_admin_user_commands_ride_on_replies_and_come_back_in_the_things_shape(bench, session):
    """user_set, user_get, user_list and opendoor from an admin become
    setuserinfo, getuserinfo, getuserlist and opendoor on the device's next
    replies; the device's own codec reads and answers them, and the admin
    reads the users back as user_get / user_list answer them."""
    from agent.codecs import cloudsolution as cs
    dev = cs.Session(SN, 8, {}, TOKEN)
    assert dev.reply("reg", (await post(bench, dev.hello())).json()).ok
    adm = await _admin(session, bench)
    stored = {"id": "5", "name": "Bo", "enabled": True, "cards": [12345678], "pin": True}
    steps = (("user_set", {"user": {"id": "5", "name": "Bo", "cards": [12345678]}}, "setuserinfo", {}),
             ("user_get", {"id": "5", "backupnum": 11}, "getuserinfo", {"user": stored}),
             ("user_list", {}, "getuserlist", {"users": [stored], "more": False}),
             ("unlock", {"door": 2}, "opendoor", {"lock": "unlocked"}))
    for name, payload, word, result in steps:
        await adm.send_json({"type": "command", "device_id": SN, "command": name, "payload": payload, "id": name})
        for _ in range(50):   # the admin's message may be routed after the device's next request
            cmd = dev.reply("checklive", (await post(bench, dev.ping(int(time.time())))).json()).command
            if cmd is not None:
                break
        assert cmd is not None and cmd.name == name, (name, cmd)
        answer = dev.command_result(cmd.id, name, True, result)
        assert answer["ret"] == word
        await post(bench, answer)
        heard = await _heard(adm, name)
        assert heard["ok"] is True and heard["command"] == name and heard["word"] == word, heard
        if name == "user_get":
            assert heard["result"]["user"] == {"id": "5", "name": "Bo", "enabled": True, "cards": [12345678]}
        if name == "user_list":
            assert heard["result"]["users"] == [{"id": "5", "credentials": ["pin", "card"]}]
    # no PIN went anywhere: the device keeps only a hash, and says so
    assert not leaks("0042", bench.store.event_rows(SN))


@pytest.mark.parametrize("name, payload, words", [
    ("user_set", {"user": {"id": "5", "cards": [1], "pin": "1234"}}, "no CloudSolution form"),
    ("user_set", {"user": {"id": "5", "pin": "12"}}, "user_set: PIN must be 4 to 8 digits"),
    ("users_sync", {"phase": "begin"}, "users_sync has no CloudSolution form"),
    ("unlock", {"door": "front"}, "no CloudSolution form"),
])
async def test_admin_commands_a_device_cannot_read_are_refused_with_the_reason(bench, session, name, payload,
                                                                                words):
    assert (await post(bench, register_payload())).json()["result"] is True
    adm = await _admin(session, bench)
    await adm.send_json({"type": "command", "device_id": SN, "command": name, "payload": payload, "id": "x1"})
    got = await _heard(adm, "x1")
    assert got["type"] == "error" and words in got["message"], got
    assert "cmd" not in (await post(bench, heartbeat_payload())).json()   # nothing queued for the device
