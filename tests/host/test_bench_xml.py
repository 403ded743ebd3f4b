"""The bench's XML biometric protocol over a real socket: a live bench on
127.0.0.1, port 0, tmp SQLite, an aiohttp client speaking the documented XML."""

import asyncio
import json
import xml.etree.ElementTree as ET

import aiohttp
import pytest

from agent.codecs import xml_bio, xml_flat
from agent.codecs.session import NOTHING, Ack, Registered, Reregister
from agent.codecs.values import normal_wall

from reader_support import until
from secret_leaks import leaks

SERIAL = "FK628001"
CLOUD_ID = "cloud_001"
JSON_DEV = "3f2b8c1e-0000-4000-8000-000000000001"
JSON_TOKEN = "tok_bench_secret"
TIMEOUT = 5
BENCH_DEVICES = {SERIAL: CLOUD_ID, JSON_DEV: JSON_TOKEN}  # registered in the shared bench fixture

REGISTER = """<Request>
<Operation>Register</Operation>
<DeviceSerialNo>{serial}</DeviceSerialNo>
<CloudId>{cloud}</CloudId>
</Request>"""

TIMELOG = """<Request>
<Operation>TimeLog_v2</Operation>
<LogId>LOG001</LogId>
<UserId>EMP123</UserId>
<PunchTime>2026-05-12T09:15:30</PunchTime>
<GMT>8</GMT>
<AttendStat>0</AttendStat>
<APStat>1</APStat>
<Action>FP</Action>
<JobCode>0</JobCode>
<Photo>base64_encoded_photo...</Photo>
<Latitude>40.7128</Latitude>
<Longitude>-74.0060</Longitude>
</Request>"""

ADMINLOG = """<Request>
<Operation>AdminLog_v2</Operation>
<LogId>ADMIN001</LogId>
<AdminId>ADMIN</AdminId>
<UserId>EMP456</UserId>
<Action>EnrollFP</Action>
<Time>2026-05-12T10:30:00</Time>
</Request>"""

KEEPALIVE = "<Request>\n<Operation>KeepAlive</Operation>\n</Request>"

BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<Request><Operation>TimeLog_v2</Operation><LogId>&lol3;</LogId></Request>"""


async def connect(session, bench):
    return await asyncio.wait_for(session.ws_connect(bench.url), TIMEOUT)


async def recv_text(ws):
    msg = await asyncio.wait_for(ws.receive(), TIMEOUT)
    assert msg.type == aiohttp.WSMsgType.TEXT, f"expected text, got {msg.type} {msg.data!r}"
    return msg.data


async def ask(ws, text):
    """Send one XML request; the Response's fields, parsed by the stdlib."""
    await ws.send_str(text)
    root = ET.fromstring(await recv_text(ws))
    assert root.tag == "Response"
    return {child.tag: child.text or "" for child in root}


async def terminal(session, bench):
    ws = await connect(session, bench)
    reply = await ask(ws, REGISTER.format(serial=SERIAL, cloud=CLOUD_ID))
    assert reply["Result"] == "success" and reply["DeviceSerialNo"] == SERIAL
    return ws, reply


async def still_alive(ws):
    reply = await ask(ws, KEEPALIVE)
    assert reply["Result"] == "success" and reply["Operation"] == "KeepAlive"
    assert normal_wall(reply["ServerTime"]) == reply["ServerTime"]


async def test_register_returns_a_session_and_marks_online(bench, session):
    ws, reply = await terminal(session, bench)
    sess = reply["Session"]
    assert sess.startswith("sess_") and len(sess.split("_")) == 3 and sess.split("_")[1].isdigit()
    assert {"device_id": SERIAL, "online": True} in [
        {k: d[k] for k in ("device_id", "online")} for d in bench.store.devices()]
    # The observer hears of it once the reply is sent (Hub.after_reply), so
    # possibly just after the terminal read it: waited for, bounded.
    assert await until(lambda: bench.events), "no observer event within 3 s of the reply"
    assert ("device_online", {"device_id": SERIAL, "peer": bench.events[0][1]["peer"], "protocol": "xml",
                              "replaced": False}) in bench.events
    await still_alive(ws)
    # A second terminal session gets a new session token.
    ws2, reply2 = await terminal(session, bench)
    assert reply2["Session"] != sess
    await still_alive(ws2)


async def test_admin_sees_xml_terminal_and_its_punches(bench, session):
    adm = await connect(session, bench)
    await adm.send_json({"type": "subscribe", "role": "admin"})
    ws, _ = await terminal(session, bench)
    assert json.loads(await recv_text(adm)) == {"type": "device_status", "device_id": SERIAL, "status": "online"}
    await ask(ws, TIMELOG)
    got = json.loads(await recv_text(adm))
    assert got["type"] == "event" and got["event_type"] == "punch" and got["device_id"] == SERIAL
    # in the record vocabulary, as a JSON device sends it, whatever the terminal spoke
    assert got["payload"]["user"] == "EMP123" and got["log_id"] == "LOG001"
    assert got["payload"]["time"] == "2026-05-12T09:15:30" and got["payload"]["attend"] == "0"
    await ws.close()
    assert json.loads(await recv_text(adm)) == {"type": "device_status", "device_id": SERIAL, "status": "offline"}


async def test_timelog_stored_once_even_if_sent_twice(bench, session):
    ws, _ = await terminal(session, bench)
    for _ in range(2):
        reply = await ask(ws, TIMELOG)
        assert reply == {"Operation": "TimeLog_v2", "LogId": "LOG001", "Result": "success"}
    rows = bench.store.punch_rows(SERIAL)
    assert len(rows) == 1
    row = rows[0]
    assert (row["protocol"], row["log_id"], row["user_id"], row["punch_time"]) == (
        "xml", "LOG001", "EMP123", "2026-05-12T09:15:30")
    assert row["fields"]["Latitude"] == "40.7128" and row["fields"]["Photo"] == "base64_encoded_photo..."
    assert [k for k, _ in bench.events].count("punch") == 1
    assert bench.hub.duplicates == 1


async def test_vendor_time_format_and_padding_stored_normalised(bench, session):
    ws, _ = await terminal(session, bench)
    text = TIMELOG.replace("<LogId>LOG001</LogId>", "<LogId> 7 </LogId>").replace(
        "2026-05-12T09:15:30", "2013-05-06-T11:09:30Z")
    assert (await ask(ws, text))["LogId"] == "7"
    row = bench.store.punch_rows(SERIAL)[0]
    assert row["log_id"] == "7" and row["punch_time"] == "2013-05-06T11:09:30"
    assert row["fields"]["PunchTime"] == "2013-05-06-T11:09:30Z"


async def test_adminlog_stored(bench, session):
    ws, _ = await terminal(session, bench)
    for _ in range(2):
        assert await ask(ws, ADMINLOG) == {"Operation": "AdminLog_v2", "LogId": "ADMIN001", "Result": "success"}
    rows = bench.store.admin_log_rows(SERIAL)
    assert len(rows) == 1
    row = rows[0]
    assert (row["protocol"], row["log_id"], row["admin_id"], row["user_id"], row["action"], row["log_time"]) == (
        "xml", "ADMIN001", "ADMIN", "EMP456", "EnrollFP", "2026-05-12T10:30:00")
    assert [k for k, _ in bench.events].count("admin_log") == 1


async def test_incomplete_log_refused_with_its_logid(bench, session):
    ws, _ = await terminal(session, bench)
    reply = await ask(ws, TIMELOG.replace("<UserId>EMP123</UserId>", ""))
    assert reply["Result"] == "Fail" and reply["LogId"] == "LOG001" and "UserId" in reply["Reason"]
    reply = await ask(ws, TIMELOG.replace("2026-05-12T09:15:30", "whenever"))
    assert reply["Result"] == "Fail" and "PunchTime" in reply["Reason"]
    assert bench.store.punch_rows() == []
    await still_alive(ws)


async def test_wrong_cloud_id_refused_and_closed(bench, session):
    for serial, cloud in ((SERIAL, "cloud_wrong"), ("UNKNOWN1", CLOUD_ID)):
        ws = await connect(session, bench)
        reply = await ask(ws, REGISTER.format(serial=serial, cloud=cloud))
        assert reply["Result"] == "Fail" and reply["Reason"] == f"authentication failed for device {serial}"
        closed = await asyncio.wait_for(ws.receive(), TIMEOUT)
        assert closed.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    assert bench.stats["errors"]["auth"] == 2
    ws, _ = await terminal(session, bench)
    await still_alive(ws)


async def test_requests_before_register_refused(bench, session):
    ws = await connect(session, bench)
    reply = await ask(ws, TIMELOG)
    assert reply["Result"] == "Fail" and reply["LogId"] == "LOG001"
    assert reply["Reason"] == "not registered: send Register first"
    # The device codec reads that as "register again".
    dev = xml_bio.Session(SERIAL, CLOUD_ID)
    dev.hello()
    dev.receive("<Response><Result>success</Result><Session>s</Session></Response>")
    assert type(dev.receive(xml_flat.encode("Response", list(reply.items())))) is Reregister
    assert (await ask(ws, KEEPALIVE))["Result"] == "Fail"
    assert bench.store.punch_rows() == []
    # Then registering on the same connection works.
    reply = await ask(ws, REGISTER.format(serial=SERIAL, cloud=CLOUD_ID))
    assert reply["Result"] == "success"
    await still_alive(ws)


async def test_unknown_or_missing_operation_and_double_register(bench, session):
    ws, _ = await terminal(session, bench)
    reply = await ask(ws, "<Request><Operation>SelfDestruct</Operation></Request>")
    assert reply["Result"] == "Fail" and "unknown Operation 'SelfDestruct'" in reply["Reason"]
    assert (await ask(ws, "<Request><UserId>1</UserId></Request>"))["Reason"] == "missing <Operation>"
    assert "expected <Request>" in (await ask(ws, "<Hello/>"))["Reason"]
    reply = await ask(ws, REGISTER.format(serial=SERIAL, cloud=CLOUD_ID))
    assert reply["Result"] == "Fail" and "already registered" in reply["Reason"]
    await still_alive(ws)


@pytest.mark.parametrize("bad, words", [
    ("<Request><Operation>KeepAlive</Operation>", "unclosed"),
    ("<Request><Operation>KeepAlive</Oops></Request>", "mismatched"),
    (BILLION_LAUGHS, "no DTDs"),
    ('<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><Request><Operation>&xxe;</Operation></Request>',
     "no DTDs"),
    ("<Request><Operation>&xxe;</Operation></Request>", "unknown entity"),
    ("<Request><Operation>TimeLog_v2</Operation><Photo>" + "A" * 70_000 + "</Photo></Request>", "limit"),
    ('<Request><Operation a="1">KeepAlive</Operation></Request>', "attributes"),
])
async def test_malformed_xml_answered_and_connection_kept(bench, session, bad, words):
    ws, _ = await terminal(session, bench)
    reply = await ask(ws, bad)
    assert reply["Result"] == "Fail" and reply["Reason"].startswith("malformed XML") and words in reply["Reason"]
    await still_alive(ws)
    assert bench.stats["errors"]["malformed_xml"] == 1
    assert bench.store.punch_rows() == []


async def test_json_devices_unaffected(bench, session):
    xml_ws, _ = await terminal(session, bench)
    ws = await connect(session, bench)
    await ws.send_json({"type": "register", "device_id": JSON_DEV, "token": JSON_TOKEN})
    assert json.loads(await recv_text(ws)) == {"type": "registered", "device_id": JSON_DEV, "acks": True}
    await ws.send_json({"type": "event", "event_type": "door_opened", "id": 1})
    assert json.loads(await recv_text(ws)) == {"type": "ack", "id": 1}
    await ws.send_str("{broken")
    assert json.loads(await recv_text(ws))["type"] == "error"
    # XML sent on a JSON device's connection is answered in XML, not trusted.
    reply = await ask(ws, TIMELOG)
    assert reply["Result"] == "Fail" and reply["Reason"] == "not registered: send Register first"
    await still_alive(xml_ws)
    assert {d["device_id"] for d in bench.store.devices() if d["online"]} == {SERIAL, JSON_DEV}


async def test_device_codec_talks_to_the_bench(bench, session):
    """The agent's own session codec against the bench, end to end."""
    dev = xml_bio.Session(SERIAL, CLOUD_ID)
    ws = await connect(session, bench)
    await ws.send_str(dev.hello())
    assert dev.receive(await recv_text(ws)) == Registered(True)
    assert dev.session.startswith("sess_")
    punch = [5, 0, "punch", None, {"user": "EMP1", "time": "2026-05-12T09:15:30", "gmt": 8}]
    admin = [6, 0, "admin_log", None, {"user": "EMP1", "action": "DeleteFP", "time": "2026-05-12T09:16:00"}]
    for rec in (punch, admin, punch):
        await ws.send_str(dev.record(rec))
        assert dev.receive(await recv_text(ws)) == Ack(rec[0])
    await ws.send_str(dev.ping())
    assert dev.receive(await recv_text(ws)) == NOTHING
    assert [r["log_id"] for r in bench.store.punch_rows(SERIAL)] == ["5"]
    assert bench.store.punch_rows(SERIAL)[0]["fields"]["GMT"] == "8"
    assert [r["action"] for r in bench.store.admin_log_rows(SERIAL)] == ["DeleteFP"]


async def test_admin_commands_reach_an_xml_terminal_and_results_come_back(bench, session):
    """An admin's unlock becomes LockControl for an XML terminal; the
    terminal's Response comes back to admins as a command_result event."""
    term = await connect(session, bench)
    await term.send_str(REGISTER.format(serial=SERIAL, cloud=CLOUD_ID))
    assert "<Session>" in (await asyncio.wait_for(term.receive(), TIMEOUT)).data
    adm = await connect(session, bench)
    await adm.send_json({"type": "subscribe", "role": "admin"})
    await adm.send_json({"type": "command", "device_id": SERIAL, "command": "unlock", "id": "u1"})
    req = (await asyncio.wait_for(term.receive(), TIMEOUT)).data
    root, fields = xml_flat.decode(req)
    assert (root, fields["Operation"], fields["Mode"], fields["TransID"]) == ("Request", "LockControl", "1", "u1")
    await term.send_str(xml_flat.encode("Response", [("Operation", "LockControl"), ("TransID", "u1"),
                                                     ("Result", "success")]))
    while True:
        msg = json.loads((await asyncio.wait_for(adm.receive(), TIMEOUT)).data)
        if msg.get("event_type") == "command_result":
            break
    # the command the admin sent, whatever the terminal calls it
    assert msg["payload"] == {"id": "u1", "command": "unlock", "operation": "LockControl", "ok": True, "result": {}}
    await adm.send_json({"type": "command", "device_id": SERIAL, "command": "self_destruct"})
    while True:
        msg = json.loads((await asyncio.wait_for(adm.receive(), TIMEOUT)).data)
        if msg.get("type") == "error":
            break
    assert "no XML biometric form" in msg["message"]


async def test_a_link_keeps_the_protocol_it_registered_in(bench, session):
    """A terminal registered in XML cannot slip JSON records in on the same
    link (nor a JSON device XML logs: test_json_devices_unaffected)."""
    ws, _ = await terminal(session, bench)
    await ws.send_str(json.dumps({"type": "telemetry", "payload": {"t": 1}, "id": 1}))
    reply = json.loads(await recv_text(ws))
    assert reply["type"] == "error" and "registered as FK628001 in another protocol (xml)" in reply["message"]
    assert bench.store.telemetry_rows() == []
    await still_alive(ws)


async def _admin_result(adm, command_id):
    """The next command_result (or error) an admin hears for command_id."""
    while True:
        msg = json.loads((await asyncio.wait_for(adm.receive(), TIMEOUT)).data)
        if msg.get("type") == "error":
            return msg
        if msg.get("event_type") == "command_result" and msg["payload"]["id"] == command_id:
            return msg["payload"]


async def test_admin_user_and_door_commands_reach_a_terminal_in_its_operations(bench, session):
    """user_set, user_get and door_mode from an admin become SetUserData,
    GetUserData and LockControl; the device's own codec reads them and
    answers, and the admin reads the user back in the Thing's shape."""
    dev = xml_bio.Session(SERIAL, CLOUD_ID, gmt=8)
    term = await connect(session, bench)
    await term.send_str(dev.hello())
    assert dev.receive(await recv_text(term)) == Registered(True)
    adm = await connect(session, bench)
    await adm.send_json({"type": "subscribe", "role": "admin"})
    user = {"id": "1001", "name": "Ann", "enabled": True, "cards": [12345678], "pin": "0042"}
    expect = {"user_set": ("SetUserData", {"user": user}), "user_get": ("GetUserData", {"id": "1001"}),
              "door_mode": ("LockControl", {"door": 1, "mode": "normal_open"})}
    for name, (op, payload) in expect.items():
        await adm.send_json({"type": "command", "device_id": SERIAL, "command": name, "payload": payload,
                             "id": "c-" + name})
        text = await recv_text(term)
        assert xml_flat.decode(text)[1]["Operation"] == op
        cmd = dev.receive(text)
        assert (cmd.id, cmd.name, cmd.payload) == ("c-" + name, name, payload)
        stored = {"user": {"id": "1001", "name": "Ann", "enabled": True, "cards": [12345678], "pin": True}}
        await term.send_str(dev.command_result(cmd.id, name, True, stored if name == "user_get" else {}))
        got = await _admin_result(adm, "c-" + name)
        assert got["ok"] is True and got["command"] == name and got["operation"] == op
    # the user as the admin reads it: the Thing's shape beside the tags, no PIN anywhere
    await adm.send_json({"type": "command", "device_id": SERIAL, "command": "user_get", "payload": {"id": "1001"},
                         "id": "again"})
    cmd = dev.receive(await recv_text(term))
    await term.send_str(dev.command_result(cmd.id, "user_get", True, {"user": dict(user, pin=True)}))
    got = await _admin_result(adm, "again")
    assert got["result"]["user"] == {"id": "1001", "name": "Ann", "enabled": True, "cards": [12345678]}
    assert got["result"]["Card"] == "12345678" and "PWD" not in got["result"] and not leaks("0042", got)
    # the bench keeps the admin's commands, but never a PIN's digits
    kept = [r for r in bench.store.command_rows(SERIAL) if r["command"] == "user_set"]
    assert kept and not leaks("0042", kept) and '"pin": "set"' in json.dumps(kept)


@pytest.mark.parametrize("name, payload, words", [
    ("user_set", {"user": {"id": "7", "cards": ["12ab"]}}, "user_set: card must be a decimal card number"),
    ("user_set", {"user": {"id": "x" * 40}}, "user_set: user id is 40 characters long"),
    ("user_set", {"users": [{"id": "1"}, {"id": "2"}]}, "no XML biometric form"),
    ("users_sync", {"phase": "begin"}, "users_sync has no XML biometric form"),
    ("unlock", {"door": 2}, "no XML biometric form"),
])
async def test_admin_user_commands_a_terminal_cannot_read_are_refused_with_the_reason(bench, session, name,
                                                                                      payload, words):
    term = await connect(session, bench)
    await term.send_str(REGISTER.format(serial=SERIAL, cloud=CLOUD_ID))
    await recv_text(term)
    adm = await connect(session, bench)
    await adm.send_json({"type": "subscribe", "role": "admin"})
    await adm.send_json({"type": "command", "device_id": SERIAL, "command": name, "payload": payload, "id": "x1"})
    got = await _admin_result(adm, "x1")
    assert got["type"] == "error" and words in got["message"], got
    await still_alive(term)   # nothing reached the terminal; its link is fine
