# A developer-center client session, each message as the seed 003 document
# shows it, against a bench with a live agent behind it, on both runtimes:
# a WRITE-ATTR sent with isCache while the door is offline reaches it when
# it comes online (the relay energises, send_ack says succ), a RAW comes
# back through the agent's raw loopback as RAW-UPLINK, READ-ATTR reads the
# data points. (Error paths and isolation: tests/host/test_devcenter.py.)
import asyncio
import json
import time

import pytest

from host_tools.bench import devcenter

from e2e_support import eventually

DEVICE = "1234567890"            # the document's deviceKey
TOKEN = "tok_dc_e2e_door"
DOC_TOKEN = "xxxxxxxxxxxxxxxxxxxxxx"
TIMEOUT = 20

DOC_LOGIN = '{\n    "cmd": "login",\n    "data": {\n        "token": "xxxxxxxxxxxxxxxxxxxxxx"\n    }\n}'
DOC_SUBSCRIBE = json.dumps({"cmd": "subscribe", "data": [
    {"deviceKey": "1234567890", "messageType": ["ONLINE"], "productKey": "p12345"},
    {"deviceKey": "1234567890", "messageType": ["ONLINE", "STATUS"], "productKey": "p12345"}]}, indent=4)
MORE_TYPES = json.dumps({"cmd": "subscribe", "data": [
    {"deviceKey": "1234567890", "messageType": ["MATTR-REPORT", "RAW-UPLINK", "MEVENT-INFO"],
     "productKey": "p12345"}]})
# The document's TSL send, its kv naming the bench's data point, cached.
CACHED_WRITE = json.dumps({"cmd": "send", "data": {
    "deviceKey": "1234567890", "kv": "[{\"id\":\"Unlock\",\"name\":\"Unlocked\",\"type\":\"BOOL\",\"value\":\"true\"}]",
    "productKey": "p12345", "type": "WRITE-ATTR", "isCache": True, "cacheTime": 60, "msgId": 1}}, indent=4)
# The document's transparent-transmission send, to this device.
DOC_RAW = json.dumps({"cmd": "send", "data": {
    "cacheTime": 3600, "dataFormat": "Text", "deviceKey": "1234567890", "isCache": True, "productKey": "p12345",
    "raw": "123456", "type": "RAW", "msgId": 2}}, indent=4)
READ = json.dumps({"cmd": "send", "data": {"deviceKey": "1234567890", "productKey": "p12345", "type": "READ-ATTR",
                                           "kv": "[\"Online\", \"LockState\"]", "msgId": 3}})
DOC_UNSUBSCRIBE = json.dumps({"cmd": "unsubscribe", "data": [
    {"deviceKey": "1234567890", "productKey": "p12345"}, {"deviceKey": "1234567890", "productKey": "p12345"}]})


class Client:
    """Everything the session receives, kept in order; find() waits for a match."""

    def __init__(self, ws):
        self.ws, self.inbox, self.seen = ws, [], 0
        self._reader = asyncio.ensure_future(self._read())

    async def _read(self):
        async for msg in self.ws:
            self.inbox.append(json.loads(msg.data))

    async def ask(self, text, reply_cmd):
        self.seen = len(self.inbox)
        await self.ws.send_str(text)
        return await self.find(lambda m: m["cmd"] == reply_cmd)

    async def find(self, pred, timeout=TIMEOUT):
        """The first message since the last ask() that `pred` accepts."""
        return await eventually(lambda: next((m for m in self.inbox[self.seen:] if pred(m)), None), timeout)


def body(msg, mtype, subtype=None):
    data = msg["data"] if msg["cmd"] == "message" else None
    if isinstance(data, dict) and data["type"] == mtype and data.get("subtype") == subtype:
        return data
    return None


async def test_a_cached_write_reaches_the_door_when_it_comes_online(rig, bench, runtime, session):
    bench.store.add_user(DOC_TOKEN, "C.DM.5715.1", "11376", [DEVICE])
    c = Client(await session.ws_connect(f"ws://127.0.0.1:{bench.port}{devcenter.PATH}"))
    try:
        assert await c.ask(DOC_LOGIN, "login_resp") == {"cmd": "login_resp", "data": {"code": 1, "msg": "succ"}}
        assert await c.ask(DOC_SUBSCRIBE, "subscribe_resp") == {"cmd": "subscribe_resp", "data": [
            {"code": 1, "deviceKey": "1234567890", "msg": "succ", "productKey": "p12345"},
            {"code": 1, "deviceKey": "1234567890", "msg": "succ", "productKey": "p12345"}]}
        offline = body(await c.find(lambda m: body(m, "ONLINE")), "ONLINE")
        assert offline["data"] == {"value": 0} and offline["productKey"] == "p12345"
        assert [e["code"] for e in (await c.ask(MORE_TYPES, "subscribe_resp"))["data"]] == [1]

        # offline: the write waits (no send_ack yet)
        sent = int(time.time() * 1000)
        c.seen = len(c.inbox)
        await c.ws.send_str(CACHED_WRITE)
        await asyncio.sleep(0.5)
        assert [m for m in c.inbox[c.seen:] if m["cmd"] in ("send_ack", "error")] == []
        assert rig.session is None

        await rig.start_agent(runtime=runtime)
        online = body(await c.find(lambda m: body(m, "ONLINE") and m["data"]["data"]["value"] == 1), "ONLINE")
        assert (online["deviceKey"], len(online["ticket"])) == ("1234567890", 24)
        ack = (await c.find(lambda m: m["cmd"] == "send_ack"))["data"]
        assert (ack["msgId"], ack["productKey"], ack["deviceKey"], ack["status"]) == (1, "p12345", "1234567890",
                                                                                       "succ")
        assert sent <= ack["createdAt"] < ack["sentAt"] <= ack["ackAt"] <= time.time() * 1000
        assert ack["sentAt"] - ack["createdAt"] >= 400      # it waited for the door
        await eventually(lambda: rig.session.emulator.relay_energised(), 5)
        report = await c.find(lambda m: (body(m, "MATTR", "REPORT") or {}).get("data", {}).get("kv", {})
                              .get("LockState") == "unlocked")
        assert body(report, "MATTR", "REPORT")["data"]["kv"]["Unlock"] is True
        granted = await c.find(lambda m: (body(m, "MEVENT", "INFO") or {}).get("data", {}).get("code")
                               == "access_granted")
        assert body(granted, "MEVENT", "INFO")["createdAt"] >= ack["createdAt"]

        # RAW through the agent's loopback: RAW-UPLINK carries the same bytes
        ack = (await c.ask(DOC_RAW, "send_ack"))["data"]
        assert (ack["msgId"], ack["status"]) == (2, "succ")
        uplink = body(await c.find(lambda m: body(m, "RAW", "UPLINK")), "RAW", "UPLINK")
        assert uplink["data"]["raw"] == "MTIzNDU2" and uplink["productKey"] == "p12345"

        # READ-ATTR: the data points the bench holds, then the ack
        c.seen = len(c.inbox)
        await c.ws.send_str(READ)
        ack = (await c.find(lambda m: m["cmd"] == "send_ack"))["data"]
        assert (ack["msgId"], ack["status"]) == (3, "succ")
        read = await c.find(lambda m: set((body(m, "MATTR", "REPORT") or {}).get("data", {}).get("kv", {}))
                            == {"Online", "LockState"})
        assert body(read, "MATTR", "REPORT")["data"]["kv"]["Online"] is True

        assert await c.ask(DOC_UNSUBSCRIBE, "unsubscribe_resp") == {"cmd": "unsubscribe_resp", "data": [
            {"code": 1, "deviceKey": "1234567890", "msg": "succ", "productKey": "p12345"},
            {"code": 4014, "deviceKey": "1234567890", "msg": "device is not subscribed", "productKey": "p12345"}]}
        await c.ask(MORE_TYPES, "subscribe_resp")
        await other_user_sees_nothing(bench, session, c)
    finally:
        c._reader.cancel()
        await c.ws.close()


async def other_user_sees_nothing(bench, session, mine):
    """Error paths on the same bench, the door live: a stranger's session
    is refused what is not bound to it and hears nothing of the door while
    its owner does; a silent session is closed at the heartbeat timeout."""
    bench.store.add_device("elsewhere", "tok_elsewhere")
    bench.store.add_user("tok_stranger_0123456", None, "stranger", ["elsewhere"])
    url = f"ws://127.0.0.1:{bench.port}{devcenter.PATH}"
    them = Client(await session.ws_connect(url, autoping=False))
    try:
        for text, code in (('{"cmd": "login", "data": {"token": "tok_nobody_0123456"}}', 4008),
                           (DOC_SUBSCRIBE, 4010), ('{"cmd": "subscribe", "data": [', 4002),
                           ('{"cmd": "hello", "data": {}}', 4004)):
            reply = await them.ask(text, "login_resp" if code == 4008 else "error")
            assert reply["data"]["code"] == code, (text, reply)
        login = '{"cmd": "login", "data": {"token": "tok_stranger_0123456"}}'
        assert (await them.ask(login, "login_resp"))["data"]["code"] == 1
        assert [e["code"] for e in (await them.ask(DOC_SUBSCRIBE, "subscribe_resp"))["data"]] == [4011, 4011]
        assert (await them.ask(CACHED_WRITE, "error"))["data"]["code"] == 4011
        # the door's telemetry (every second) reaches its owner, never the stranger
        mine.seen = len(mine.inbox)
        await mine.find(lambda m: "Temperature" in ((body(m, "MATTR", "REPORT") or {}).get("data", {}).get("kv", {})))
        assert [m for m in them.inbox if m["cmd"] == "message"] == []
        # silence past the heartbeat timeout closes the session (the document: 130 s; here 1 s)
        bench.app[devcenter.KEY].heartbeat_s = 1.0
        await them.ws.send_str('{"cmd": "pong"}')      # its last heartbeat, then silence
        await eventually(lambda: them.ws.closed, 5)
        assert them.ws.close_code == 1008
    finally:
        them._reader.cancel()
        await them.ws.close()


@pytest.fixture
async def session():
    import aiohttp
    async with aiohttp.ClientSession() as s:
        yield s
