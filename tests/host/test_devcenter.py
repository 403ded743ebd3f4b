"""The developer-center API on a real bench (ws://127.0.0.1:PORT/ws/dc/v1),
with a device played by a JSON WebSocket client on /ws: each message of
the seed 003 document as it shows it, each reply field by field, every
error code whose condition can occur, heartbeats, and one user never
seeing another's device. (tests/e2e/test_devcenter.py does it with a live
agent behind the bench.)"""

import asyncio
import base64
import json
import time

import aiohttp
import pytest

from host_tools.bench import devcenter

DOOR, OTHER, GHOST = "1234567890", "1234567892", "866123456789015"
TERMINAL = "FK628001"     # an XML biometric terminal: its protocol has no raw passthrough
BENCH_DEVICES = {DOOR: "tok_dc_door", OTHER: "tok_dc_other", TERMINAL: "cloud_001"}
DOC_TOKEN = "xxxxxxxxxxxxxxxxxxxxxx"          # the document's token, as its login shows it
OTHER_TOKEN = "tok_other_user_0123"
TIMEOUT = 5

DOC_LOGIN = '{\n    "cmd": "login",\n    "data": {\n        "token": "xxxxxxxxxxxxxxxxxxxxxx"\n    }\n}'
DOC_SUBSCRIBE = """{
    "cmd": "subscribe",
    "data": [
        {
            "deviceKey": "1234567890",
            "messageType": [
                "ONLINE"
            ],
            "productKey": "p12345"
        },
        {
            "deviceKey": "1234567890",
            "messageType": [
                "ONLINE",
                "STATUS"
            ],
            "productKey": "p12345"
        }
    ]
}"""
DOC_UNSUBSCRIBE = """{
    "cmd": "unsubscribe",
    "data": [
        {
            "deviceKey": "1234567890",
            "productKey": "p12345"
        },
        {
            "deviceKey": "1234567890",
            "productKey": "p12345"
        }
    ]
}"""
EVERY_TYPE = ["ONLINE", "STATUS", "RAW-UPLINK", "MATTR-REPORT", "MEVENT-INFO", "MEVENT-WARN", "MEVENT-ERROR",
              "LOCATION-INFO-KV"]


class Client:
    """A developer-center client: what it sends, what it receives (JSON)."""

    def __init__(self, ws):
        self.ws = ws

    async def send(self, msg):
        await self.ws.send_str(msg if isinstance(msg, str) else json.dumps(msg))

    async def recv(self, timeout=TIMEOUT):
        msg = await asyncio.wait_for(self.ws.receive(), timeout)
        assert msg.type == aiohttp.WSMsgType.TEXT, (msg, self.ws.close_code)
        return json.loads(msg.data)

    async def ask(self, msg):
        await self.send(msg)
        return await self.recv()

    async def next(self, pred, timeout=TIMEOUT):
        """The next message `pred` accepts (others skipped)."""
        async def scan():
            while True:
                got = await self.recv(timeout)
                if pred(got):
                    return got
        return await asyncio.wait_for(scan(), timeout)

    async def nothing(self, wait=0.3):
        """Nothing arrives within `wait` s."""
        with pytest.raises(TimeoutError):
            got = await asyncio.wait_for(self.ws.receive(), wait)
            pytest.fail(f"unexpected: {got}")


def pushed(msg, mtype, subtype=None):
    """The body of a `message` of that type (ENDUSER's data is a JSON string)."""
    if msg.get("cmd") != "message":
        return None
    body = json.loads(msg["data"]) if isinstance(msg["data"], str) else msg["data"]
    if body["type"] != mtype or body.get("subtype") != subtype:
        return None
    return body


class Device:
    """A device on the bench's /ws (the JSON WebSocket protocol)."""

    def __init__(self, ws):
        self.ws = ws

    async def say(self, **msg):
        await self.ws.send_json(msg)

    async def command(self):
        while True:
            msg = json.loads((await asyncio.wait_for(self.ws.receive(), TIMEOUT)).data)
            if msg.get("type") == "command":
                return msg

    async def answer(self, cmd, ok=True):
        payload = {"id": cmd["id"], "ok": ok, **({"result": {}} if ok else {"error": "refused"})}
        await self.say(type="event", event_type="command_result", payload=payload)


@pytest.fixture
async def users(bench):
    bench.store.add_user(DOC_TOKEN, "C.DM.5715.1", "11376", [DOOR, GHOST, TERMINAL])
    bench.store.add_user(OTHER_TOKEN, None, "u2", [OTHER])
    return bench


@pytest.fixture
async def connect(users, session):
    url = f"ws://127.0.0.1:{users.port}{devcenter.PATH}"

    async def open_(login=DOC_LOGIN, **kwargs):
        c = Client(await session.ws_connect(url, **kwargs))
        if login:
            assert await c.ask(login) == {"cmd": "login_resp", "data": {"code": 1, "msg": "succ"}}
        return c
    return open_


@pytest.fixture
async def device(users, session):
    async def open_(device_id=DOOR):
        ws = await session.ws_connect(users.url)
        await ws.send_json({"type": "register", "device_id": device_id, "token": BENCH_DEVICES[device_id]})
        assert json.loads((await ws.receive()).data)["type"] == "registered"
        return Device(ws)
    return open_


def error(code, msg, req):
    return {"cmd": "error", "data": {"code": code, "msg": msg, "reqMsg": req}}


def without_detail(reply):
    reply["data"].pop("detail", None)
    return reply


async def test_login_as_the_document_shows_and_its_errors(connect):
    c = await connect()
    assert without_detail(await c.ask(DOC_LOGIN)) == error(4009, "user cannot login repeatedly", DOC_LOGIN)
    bad = await connect(login=None)
    wrong = '{"cmd": "login", "data": {"token": "not-the-token-at-all"}}'
    assert await bad.ask(wrong) == {"cmd": "login_resp", "data": {"code": 4008, "msg": "token validation failed"}}
    empty = '{"cmd": "login", "data": {"token": ""}}'
    assert without_detail(await bad.ask(empty)) == error(4007, "token is empty", empty)
    # still not logged in: a subscribe is refused
    assert (await bad.ask(DOC_SUBSCRIBE))["data"]["code"] == 4010
    # three wrong tokens and the connection is closed
    await bad.ask(wrong)
    assert (await bad.ask(wrong))["data"]["code"] == 4008
    assert (await bad.ws.receive(timeout=TIMEOUT)).type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    assert bad.ws.close_code == 1008


BEFORE_LOGIN = [
    ('{"cmd": "subscribe", "data": [}', 4002, "the JSON data is incorrectly formatted"),
    ('{"data": {"token": "x"}}', 4003, "command is empty"),
    ('{"cmd": "reboot", "data": {}}', 4004, "command is not supported"),
    ('{"cmd": "send"}', 4005, "data is empty"),
    ('{"cmd": "send", "data": [1]}', 4006, "data format is incorrect"),
    (DOC_SUBSCRIBE, 4010, "user not logged in"),
    (DOC_UNSUBSCRIBE, 4010, "user not logged in"),
]


async def test_bad_messages_before_login_get_an_error_and_the_session_goes_on(connect):
    c = await connect(login=None)
    for text, code, msg in BEFORE_LOGIN:
        reply = await c.ask(text)
        assert reply["data"]["detail"], text
        assert without_detail(reply) == error(code, msg, text)
    assert (await c.ask(DOC_LOGIN))["data"]["code"] == 1


async def test_subscribe_as_the_document_shows_with_per_device_codes(connect, device):
    c = await connect()
    assert await c.ask(DOC_SUBSCRIBE) == {"cmd": "subscribe_resp", "data": [
        {"code": 1, "deviceKey": DOOR, "msg": "succ", "productKey": "p12345"},
        {"code": 1, "deviceKey": DOOR, "msg": "succ", "productKey": "p12345"}]}
    # where the device stands now: offline
    now = await c.recv()
    body = pushed(now, "ONLINE")
    assert body["data"] == {"value": 0} and body["productKey"] == "p12345" and body["deviceKey"] == DOOR
    assert len(body["ticket"]) == 24 and abs(body["createdAt"] - time.time() * 1000) < 60_000
    entries = [{"productKey": "p12345", "deviceKey": OTHER, "messageType": ["ONLINE"]},
               {"deviceKey": DOOR, "messageType": ["ONLINE"]},
               {"productKey": "p 1", "deviceKey": DOOR, "messageType": ["ONLINE"]},
               {"productKey": "p12345", "messageType": ["ONLINE"]},
               {"productKey": "p12345", "deviceKey": "a\tb", "messageType": ["ONLINE"]},
               {"productKey": "p12345", "deviceKey": DOOR, "messageType": []},
               {"productKey": "p12345", "deviceKey": DOOR, "messageType": ["SHADOW"]},
               {"productKey": "p12345", "deviceKey": "nobody-knows", "messageType": ["ONLINE"]}]
    reply = await c.ask({"cmd": "subscribe", "data": entries})
    assert [(e["code"], e["msg"]) for e in reply["data"]] == [
        (4011, "device is not bound"), (4021, "product key is empty"),
        (4022, "product key is incorrectly formatted"), (4023, "device key is empty"),
        (4024, "device key is incorrectly formatted"), (4025, "message type is empty"),
        (4012, "subscription type is not supported"), (4011, "device is not bound")]
    # subscribed to ONLINE and STATUS only: the device's MATTR and events are not pushed
    dev = await device()
    assert pushed(await c.recv(), "ONLINE")["data"] == {"value": 1}
    await dev.say(type="event", event_type="door_forced", payload={"door": "main"}, id=1)
    await dev.say(type="telemetry", payload={"temperature": 20.5, "battery": 20}, id=2)
    status = pushed(await c.recv(), "STATUS")
    assert status["data"] == {"packetId": 2, "kv": {"battery": "20"}}


async def test_every_push_a_device_makes(connect, device):
    c = await connect()
    await c.ask({"cmd": "subscribe", "data": [{"productKey": "p1", "deviceKey": DOOR, "messageType": EVERY_TYPE}]})
    assert pushed(await c.recv(), "ONLINE")["data"]["value"] == 0
    dev = await device()
    assert pushed(await c.recv(), "ONLINE")["data"]["value"] == 1
    await dev.say(type="telemetry", id=7, payload={"temperature": 21.5, "humidity": 40, "voltage": 4,
                                                  "location": {"type": "GP", "subType": "GGA", "lat": 1222.1231,
                                                               "lng": 12346.6241, "latType": "N"}})
    got = [await c.recv() for _ in range(3)]
    assert pushed(got[0], "STATUS")["data"] == {"packetId": 7, "kv": {"voltage": "4"}}
    assert pushed(got[1], "LOCATION", "INFO-KV")["data"] == {
        "packetId": 7, "type": "GP", "subType": "GGA",
        "kv": {"type": "GP", "subType": "GGA", "lat": 1222.1231, "lng": 12346.6241, "latType": "N"}}
    assert pushed(got[2], "MATTR", "REPORT")["data"] == {"packetId": 7, "kv": {"Temperature": 21.5, "Humidity": 40}}
    await dev.say(type="event", event_type="door_forced", payload={"door": "main"}, id=8)
    assert pushed(await c.recv(), "MATTR", "REPORT")["data"]["kv"] == {"AlarmForced": True}
    assert pushed(await c.recv(), "MEVENT", "ERROR")["data"] == {"packetId": 8, "code": "door_forced",
                                                                 "kv": {"door": "main"}}
    await dev.say(type="event", event_type="door_held_open", payload={"door": "main"}, id=9)
    await c.recv()
    assert pushed(await c.recv(), "MEVENT", "WARN")["data"]["code"] == "door_held_open"
    await dev.say(type="event", event_type="access_denied", payload={"user": "7", "source": "card"}, id=10)
    assert pushed(await c.recv(), "MATTR", "REPORT")["data"]["kv"]["LastAccess"] == "denied"
    assert pushed(await c.recv(), "MEVENT", "INFO")["data"]["code"] == "access_denied"
    await dev.say(type="event", event_type="raw", payload={"data": "YSBtZXNzYWdl"}, id=11)
    assert pushed(await c.recv(), "RAW", "UPLINK")["data"] == {"packetId": 11, "raw": "YSBtZXNzYWdl"}
    # the same device again on a new connection, the old one replaced: re-online
    again = await device()
    assert pushed(await c.recv(), "ONLINE")["data"]["value"] == 2
    await dev.ws.close()
    await again.ws.close()
    assert pushed(await c.next(lambda m: pushed(m, "ONLINE")), "ONLINE")["data"]["value"] == 0


async def test_send_to_an_online_device_and_its_send_ack(connect, device):
    c = await connect()
    dev = await device()
    before = int(time.time() * 1000)
    kv = json.dumps([{"id": "Unlock", "name": "Unlocked", "type": "BOOL", "value": "true"}])
    await c.send({"cmd": "send", "data": {"deviceKey": DOOR, "kv": kv, "productKey": "p12345",
                                          "type": "WRITE-ATTR", "msgId": 7}})
    cmd = await dev.command()
    assert (cmd["command"], cmd["payload"]) == ("unlock", {})
    await dev.answer(cmd)
    ack = await c.recv()
    data = ack["data"]
    assert ack["cmd"] == "send_ack" and set(data) == {"msgId", "ticket", "productKey", "deviceKey", "createdAt",
                                                       "sentAt", "ackAt", "status"}
    assert (data["msgId"], data["productKey"], data["deviceKey"], data["status"]) == (7, "p12345", DOOR, "succ")
    assert before <= data["createdAt"] <= data["sentAt"] <= data["ackAt"] <= time.time() * 1000
    # a refused command: status fail; no msgId: 0
    await c.send({"cmd": "send", "data": {"deviceKey": DOOR, "kv": {"DoorMode": "locked"},
                                          "productKey": "p12345", "type": "WRITE-ATTR"}})
    cmd = await dev.command()
    assert (cmd["command"], cmd["payload"]) == ("door_mode", {"mode": "locked"})
    await dev.answer(cmd, ok=False)
    data = (await c.recv())["data"]
    assert (data["msgId"], data["status"]) == (0, "fail")
    # RAW in each dataFormat reaches the device as the same bytes, base64
    for fmt, raw in (("Text", "123456"), ("Hex", "313233343536"), ("Base64", "MTIzNDU2")):
        await c.send({"cmd": "send", "data": {"deviceKey": DOOR, "productKey": "p12345", "type": "RAW",
                                              "dataFormat": fmt, "raw": raw, "QoS": 0}})
        cmd = await dev.command()
        assert (cmd["command"], base64.b64decode(cmd["payload"]["data"])) == ("raw", b"123456")
        assert (await c.recv())["data"]["status"] == "succ"    # QoS 0: acked once sent
    # EXE-SERV the document's way: params as a list of {"id", "value"} with text values
    await c.send({"cmd": "send", "data": {"deviceKey": DOOR, "productKey": "p12345", "type": "EXE-SERV",
                                          "kv": json.dumps([{"id": "unlock", "value": [
                                              {"id": "duration_ms", "value": "3000"}]}])}})
    cmd = await dev.command()
    assert (cmd["command"], cmd["payload"]) == ("unlock", {"duration_ms": 3000})
    await dev.answer(cmd)
    assert (await c.recv())["data"]["status"] == "succ"
    # READ-ATTR: the data points the bench holds, as a MATTR REPORT, then the ack
    await dev.say(type="telemetry", payload={"temperature": 19.5, "humidity": 30}, id=3)
    await asyncio.sleep(0.2)
    await c.send({"cmd": "send", "data": {"deviceKey": DOOR, "productKey": "p12345", "type": "READ-ATTR",
                                          "kv": '["Temperature", "Online"]', "msgId": 9}})
    report = pushed(await c.recv(), "MATTR", "REPORT")
    assert report["data"]["kv"] == {"Temperature": 19.5, "Online": True}
    ack = (await c.recv())["data"]
    assert (ack["msgId"], ack["status"]) == (9, "succ")


async def test_a_command_the_device_never_answers_fails(connect, device, users):
    users.app[devcenter.KEY].answer_s = 0.3
    c = await connect()
    dev = await device()
    await c.send({"cmd": "send", "data": {"deviceKey": DOOR, "productKey": "p1", "type": "RAW", "raw": "x"}})
    await dev.command()
    ack = (await c.recv())["data"]
    assert ack["status"] == "fail" and ack["ackAt"] >= ack["sentAt"]


def send_msg(device_key=DOOR, **data):
    return json.dumps({"cmd": "send", "data": {"productKey": "p12345", "deviceKey": device_key, **data}})


SEND_ERRORS = [
    (send_msg(OTHER, type="RAW", raw="1"), 4011),
    (send_msg("no-such-device", type="RAW", raw="1"), 4011),
    (send_msg(GHOST, type="RAW", raw="1"), 4018),
    (send_msg(type="RAW", raw="1"), 4030),
    (send_msg(type="READ-ATTR"), 4030),
    (send_msg(type="OPEN", raw="1"), 4015),
    (send_msg(raw="1"), 4026),
    (send_msg(type="RAW", kv='{"Unlock": true}'), 4020),
    (send_msg(type="WRITE-ATTR", raw="1"), 4020),
    (send_msg(type="WRITE-ATTR", kv='{"LockState": "unlocked"}'), 4028),
    (send_msg(type="WRITE-ATTR", kv='{"Colour": "red"}'), 4028),
    (send_msg(type="WRITE-ATTR", kv='[{"id": "Unlock", "type": "INT", "value": 1}]'), 4028),
    (send_msg(type="WRITE-ATTR", kv='[{"id": "Unlock", "value": "maybe"}]'), 4028),
    (send_msg(type="EXE-SERV", kv='[{"id": "self_destruct"}]'), 4028),
    (send_msg(type="EXE-SERV", kv='[{"id": "unlock", "value": {"duration_ms": "1"}}]'), 4028),
    (send_msg(type="READ-ATTR", kv='["Nope"]'), 4028),
    (send_msg(type="RAW", raw="1", msgId="seven"), 4029),
    (send_msg(type="RAW", raw="zz", dataFormat="Hex"), 4006),
]


async def test_send_errors_carry_the_documents_codes(connect, users):
    users.app[devcenter.KEY].sends_per_s = 1000
    c = await connect()
    for text, code in SEND_ERRORS:
        reply = await c.ask(text)
        assert reply["cmd"] == "error" and reply["data"]["code"] == code and reply["data"]["reqMsg"] == text, reply


async def test_a_cached_send_waits_for_the_device_and_expires(connect, device, users):
    users.app[devcenter.KEY].sends_per_s = 1000
    c = await connect()
    msgs = [send_msg(type="WRITE-ATTR", kv='{"Unlock": true}', isCache=True, cacheTime=60, msgId=n)
            for n in range(devcenter.MAX_CACHED)]
    for m in msgs:
        await c.send(m)
    full = await c.ask(send_msg(type="RAW", raw="1", isCache=True))
    assert full["data"]["code"] == 4027
    await c.nothing()
    dev = await device()
    for n in range(devcenter.MAX_CACHED):     # in the order they were sent
        cmd = await dev.command()
        assert cmd["command"] == "unlock"
        await dev.answer(cmd)
        ack = (await c.recv())["data"]
        assert (ack["msgId"], ack["status"]) == (n, "succ") and ack["sentAt"] > ack["createdAt"]
    await dev.ws.close()
    await asyncio.sleep(0.2)
    await c.send(send_msg(type="RAW", raw="1", isCache=True, cacheTime=1, msgId=99))
    ack = (await c.recv(timeout=3))["data"]
    assert (ack["msgId"], ack["status"]) == (99, "fail") and ack["ackAt"] - ack["createdAt"] >= 900


async def test_sends_past_the_rate_limit_are_4019(connect):
    c = await connect()
    codes = []
    for _ in range(devcenter.SENDS_PER_S + 1):
        codes.append((await c.ask(send_msg(type="RAW", raw="1")))["data"]["code"])
    assert codes == [4030] * devcenter.SENDS_PER_S + [4019]


async def test_unsubscribe_as_the_document_shows(connect):
    c = await connect()
    assert without_detail(await c.ask(DOC_UNSUBSCRIBE)) == error(4013, "not subscribed", DOC_UNSUBSCRIBE)
    await c.ask(DOC_SUBSCRIBE)
    await c.recv()    # ONLINE now
    assert await c.ask(DOC_UNSUBSCRIBE) == {"cmd": "unsubscribe_resp", "data": [
        {"code": 1, "deviceKey": DOOR, "msg": "succ", "productKey": "p12345"},
        {"code": 4014, "deviceKey": DOOR, "msg": "device is not subscribed", "productKey": "p12345"}]}


async def test_a_user_never_sees_another_users_device(connect, device, users):
    mine = await connect()
    theirs = await connect(login=json.dumps({"cmd": "login", "data": {"token": OTHER_TOKEN}}))
    sub = {"cmd": "subscribe", "data": [{"productKey": "p1", "deviceKey": DOOR, "messageType": EVERY_TYPE}]}
    assert (await theirs.ask(sub))["data"][0]["code"] == 4011
    assert (await theirs.ask(send_msg(type="WRITE-ATTR", kv='{"Unlock": true}')))["data"]["code"] == 4011
    await mine.ask(sub)
    await mine.recv()
    dev = await device()
    await dev.say(type="event", event_type="door_forced", payload={}, id=1)
    assert pushed(await mine.next(lambda m: pushed(m, "MEVENT", "ERROR")), "MEVENT", "ERROR")
    await theirs.nothing()
    # bound to them: ENDUSER USER-BIND value 1, then they may subscribe
    await users.hub.bind("u2", DOOR)
    bind = pushed(await theirs.recv(), "ENDUSER", "USER-BIND")
    assert bind["deviceKey"] == DOOR and bind["data"] == {"endUserId": "u2", "endUserDomain": "doorlink",
                                                          "value": 1, "authStatus": 1, "authLevel": 1}
    await mine.nothing()
    assert (await theirs.ask(sub))["data"][0]["code"] == 1
    # unbound from me: value 0 and my pushes stop
    await users.hub.unbind("11376", DOOR)
    unbind = pushed(await mine.recv(), "ENDUSER", "USER-BIND")
    assert (unbind["productKey"], unbind["data"]["value"], unbind["data"]["invalidCause"]) == ("p1", 0, 1)
    await dev.say(type="event", event_type="door_forced", payload={}, id=2)
    assert pushed(await theirs.next(lambda m: pushed(m, "MEVENT", "ERROR")), "MEVENT", "ERROR")
    await mine.nothing()


async def test_the_heartbeat_pong_keeps_a_session_and_silence_closes_it(connect, users):
    dc = users.app[devcenter.KEY]
    dc.heartbeat_s, dc.login_deadline_s = 0.6, 0.3
    never = await connect(login=None)        # connects, never logs in
    msg = await never.ws.receive(timeout=TIMEOUT)
    assert never.ws.close_code == 1008 and "no login within" in (msg.extra or "")
    c = await connect(autoping=False)
    for _ in range(4):                       # 1.2 s of pongs, each well inside the timeout
        await asyncio.sleep(0.3)
        await c.send('{"cmd": "pong"}')
    start = time.monotonic()
    msg = await c.ws.receive(timeout=TIMEOUT)
    assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    assert c.ws.close_code == 1008 and time.monotonic() - start >= 0.4
    assert "heartbeat" in (msg.extra or "")


async def test_a_client_answering_websocket_pings_stays(connect, users):
    dc = users.app[devcenter.KEY]
    dc.heartbeat_s, dc.ping_s = 0.6, 0.2
    c = await connect()                      # aiohttp answers pings, as a browser does
    await c.nothing(1.5)
    assert not c.ws.closed
    assert (await c.ask(send_msg(type="RAW", raw="1")))["data"]["code"] == 4030


async def test_a_command_the_devices_protocol_cannot_say_is_4017(connect, users, session):
    terminal = await session.ws_connect(users.url)
    await terminal.send_str("<Request>\n<Operation>Register</Operation>\n<DeviceSerialNo>FK628001</DeviceSerialNo>\n"
                            "<CloudId>cloud_001</CloudId>\n</Request>")
    assert "<Result>success</Result>" in (await terminal.receive(timeout=TIMEOUT)).data
    c = await connect()
    text = send_msg(TERMINAL, type="RAW", raw="1", msgId=5)
    reply = await c.ask(text)
    assert (reply["cmd"], reply["data"]["code"], reply["data"]["msg"], reply["data"]["reqMsg"]) == (
        "error", 4017, "failed to send data", text)
    await c.nothing()     # refused before it went anywhere: no send_ack


async def test_logins_past_the_token_checks_the_bench_can_queue_are_4016(users, session):
    url = f"ws://127.0.0.1:{users.port}{devcenter.PATH}"
    clients = [await session.ws_connect(url) for _ in range(24)]
    wrong = '{"cmd": "login", "data": {"token": "wrong-token-0123456789"}}'
    await asyncio.gather(*(ws.send_str(wrong) for ws in clients))
    codes = [json.loads((await ws.receive(timeout=20)).data)["data"]["code"] for ws in clients]
    assert set(codes) == {4008, 4016}, codes
    # a client told 4016 logs in once the queue is short again
    busy = clients[codes.index(4016)]
    await busy.send_str(DOC_LOGIN)
    assert json.loads((await busy.receive(timeout=20)).data)["data"] == {"code": 1, "msg": "succ"}
