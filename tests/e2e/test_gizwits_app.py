# The Gizwits app WebSocket API (seed 002) against a bench with a live agent
# behind it, per runtime: each client message sent as the document shows it,
# each reply checked field by field. c2s_write {"unlock": true} energises the
# relay on the emulated board and s2c_noti says so; raw frames go through the
# agent's raw command and come back; a user sees and commands only its own
# devices; the error paths answer with their codes, and a silent session is
# closed at its heartbeat.
import asyncio
import base64
import json

import aiohttp
import pytest

from host_tools.bench import gizwits_codec as gc

from e2e_support import DEVICE, SITE, TOKEN, eventually

RELAY = 26
OTHER = "someone-elses-door"
ALICE = {"appid": "doorlink-app", "uid": "alice", "token": "alice-token-0123456789"}
MALLORY = {"appid": "doorlink-app", "uid": "mallory", "token": "mallory-token-0123456789"}


@pytest.fixture
def rig_options():
    # a pulse long enough to see the relay held, short enough to relock within the test
    return {"device_id": DEVICE, "token": TOKEN, "site": SITE, "peripherals": {"door": {"unlock_ms": 1500}}}


class App:
    """A Gizwits app client on /ws/app/v1, keeping every message it got."""

    def __init__(self, ws):
        self.ws, self.got = ws, []

    async def send(self, obj):
        await self.ws.send_str(obj if isinstance(obj, str) else json.dumps(obj))

    async def next(self, pred, timeout=15):
        """The first message (kept or arriving) that pred() accepts; taken off the kept list."""
        async def scan():
            while True:
                for i, m in enumerate(self.got):
                    if pred(m):
                        return self.got.pop(i)
                msg = await self.ws.receive()
                if msg.type != aiohttp.WSMsgType.TEXT:
                    raise AssertionError(f"socket closed ({msg.type}, {self.ws.close_code})")
                self.got.append(json.loads(msg.data))
        return await asyncio.wait_for(scan(), timeout)

    async def cmd(self, name, timeout=15):
        return await self.next(lambda m: m["cmd"] == name, timeout)

    async def invalid(self, code):
        got = await self.cmd("s2c_invalid_msg")
        assert got["data"]["error_code"] == code, got
        assert isinstance(got["data"]["msg"], str) and got["data"]["msg"]
        return got["data"]

    async def login(self, who, **data):
        await self.send({"cmd": "login_req", "data": {**who, "p0_type": "attrs_v4", "heartbeat_interval": 180,
                                                      "auto_subscribe": False, **data}})
        return await self.cmd("login_res")


@pytest.fixture
async def app_client(bench):
    async with aiohttp.ClientSession() as http:
        opened = []

        async def connect():
            ws = await http.ws_connect(f"{bench.http_url.replace('http', 'ws', 1)}/ws/app/v1")
            opened.append(ws)
            return App(ws)

        yield connect
        for ws in opened:
            await ws.close()


def _users(bench):
    bench.store.add_user(ALICE["token"], ALICE["appid"], ALICE["uid"], [DEVICE])
    bench.store.add_user(MALLORY["token"], MALLORY["appid"], MALLORY["uid"], [OTHER])


async def test_a_doc_literal_session_unlocks_the_door(runtime, rig, bench, app_client):
    _users(bench)
    await rig.start_agent(runtime=runtime)
    await rig.wait_registered(timeout=30)
    emu = rig.session.emulator
    app, mallory = await app_client(), await app_client()

    # 1. login_req as the document shows it -> login_res
    await app.send({"cmd": "login_req", "data": {"appid": ALICE["appid"], "uid": ALICE["uid"],
                                                 "token": ALICE["token"], "p0_type": "attrs_v4",
                                                 "heartbeat_interval": 180, "auto_subscribe": False}})
    assert await app.cmd("login_res") == {"cmd": "login_res", "data": {"success": True}}
    assert (await mallory.login(MALLORY))["data"]["success"] is True

    # 2. subscribe_req -> subscribe_res with per-device success and failed, then the device's online status
    await app.send({"cmd": "subscribe_req", "data": [{"did": DEVICE}, {"did": OTHER}]})
    assert await app.cmd("subscribe_res") == {"cmd": "subscribe_res", "data": {
        "success": [{"did": DEVICE, "error_code": 0, "msg": "ok"}],
        "failed": [{"did": OTHER, "error_code": gc.NOT_BOUND, "msg": f"device {OTHER} is not bound to this user"}]}}
    assert await app.cmd("s2c_online_status") == {"cmd": "s2c_online_status", "data": {
        "did": DEVICE, "passcode": "", "mac": DEVICE, "online": True}}
    # mallory cannot subscribe to alice's door, read it or command it
    await mallory.send({"cmd": "subscribe_req", "data": [{"did": DEVICE}]})
    got = await mallory.cmd("subscribe_res")
    assert got["data"]["success"] == [] and got["data"]["failed"][0]["error_code"] == gc.NOT_BOUND
    await mallory.send({"cmd": "c2s_write", "req_sn": 9, "data": {"did": DEVICE, "attrs": {"unlock": True}}})
    assert (await mallory.invalid(gc.NOT_BOUND))["res_sn"] == 9
    await mallory.send({"cmd": "c2s_read", "data": {"did": DEVICE}})
    await mallory.invalid(gc.NOT_BOUND)

    # 3. c2s_read with req_sn -> s2c_noti with res_sn
    await app.send({"cmd": "c2s_read", "req_sn": 1, "data": {"did": DEVICE, "names": ["online", "lock_state"]}})
    got = await app.cmd("s2c_noti")
    assert got["res_sn"] == 1 and "req_sn" not in got and got["data"]["did"] == DEVICE
    assert got["data"]["attrs"]["online"] is True and set(got["data"]["attrs"]) <= {"online", "lock_state"}

    # 4. c2s_write {"unlock": true} -> the relay energises -> s2c_ack and s2c_noti with res_sn say unlocked
    assert emu.relay_energised("front") is False
    await app.send({"cmd": "c2s_write", "req_sn": 2, "data": {"did": DEVICE, "attrs": {"unlock": True}}})
    await emu.wait_output(RELAY, 1, timeout=10)
    assert await app.cmd("s2c_ack") == {"cmd": "s2c_ack", "res_sn": 2, "did": DEVICE}
    got = await app.next(lambda m: m["cmd"] == "s2c_noti" and m.get("res_sn") == 2)
    assert got["data"]["did"] == DEVICE
    assert got["data"]["attrs"]["unlock"] is True and got["data"]["attrs"]["lock_state"] == "unlocked"
    # the device's own event too (no sn), then the relock when the pulse ends
    got = await app.next(lambda m: m["cmd"] == "s2c_noti" and "res_sn" not in m
                         and m["data"]["attrs"].get("lock_state") == "unlocked")
    assert got["data"]["attrs"]["last_access"] == "granted" and got["data"]["attrs"]["last_access_source"] == "cloud"
    await emu.wait_output(RELAY, 0, timeout=10)
    got = await app.next(lambda m: m["cmd"] == "s2c_noti" and m["data"]["attrs"].get("lock_state") == "locked")
    assert got["data"]["attrs"]["unlock"] is False

    # 5. c2s_raw (0x93, with an sn) -> the agent's raw command -> s2c_raw 0x91 with the bytes and 0x94 with the sn
    payload = bytes(range(200))
    await app.send({"cmd": "c2s_raw", "data": {"did": DEVICE, "raw": gc.frame(0x93, b"\x00\x00\x00\x2a" + payload)}})
    report = await app.next(lambda m: m["cmd"] == "s2c_raw" and gc.unframe(m["data"]["raw"])[0] == 0x91)
    assert report["data"]["did"] == DEVICE and gc.unframe(report["data"]["raw"]) == (0x91, payload)
    ack = await app.next(lambda m: m["cmd"] == "s2c_raw" and gc.unframe(m["data"]["raw"])[0] == 0x94)
    assert ack == {"cmd": "s2c_raw", "data": {"did": DEVICE, "raw": [0, 0, 0, 3, 7, 0, 0, 0x94, 0, 0, 0, 42]}}
    rows = bench.store.event_rows(DEVICE, "raw")
    assert base64.b64decode(rows[-1]["payload"]["data"]) == payload
    # a did with the JS SDK's /usr suffix is the same device
    await app.send({"cmd": "c2s_raw", "data": {"did": DEVICE + "/usr5770149", "raw": gc.frame(0x90, b"hi")}})
    report = await app.next(lambda m: m["cmd"] == "s2c_raw")
    assert gc.unframe(report["data"]["raw"]) == (0x91, b"hi")

    # 6. ping -> pong; c2s_ack for an sn never sent -> its code
    await app.send({"cmd": "ping"})
    assert await app.cmd("pong") == {"cmd": "pong"}
    await app.send({"cmd": "c2s_ack", "res_sn": 12345, "did": DEVICE})
    await app.invalid(gc.UNKNOWN_SN)

    # 7. binding changes reach the user's sessions
    assert await bench.hub.bind(ALICE["uid"], OTHER)
    assert await app.cmd("s2c_binding_changed") == {"cmd": "s2c_binding_changed", "data": {"did": OTHER, "bind": True}}
    assert await bench.hub.unbind(ALICE["uid"], DEVICE)
    assert await app.cmd("s2c_binding_changed") == {"cmd": "s2c_binding_changed",
                                                    "data": {"did": DEVICE, "bind": False}}
    await app.send({"cmd": "c2s_write", "data": {"did": DEVICE, "attrs": {"unlock": True}}})
    await app.invalid(gc.NOT_BOUND)

    # mallory heard nothing of alice's door the whole time
    await mallory.send({"cmd": "ping"})
    await mallory.cmd("pong")
    assert [m for m in mallory.got if DEVICE in json.dumps(m)] == []
    assert emu.relay_energised("front") is False


async def test_error_paths(bench, app_client):
    _users(bench)
    app = await app_client()
    await app.send("{this is not json")
    await app.invalid(gc.MALFORMED_JSON)
    await app.send({"cmd": "c2s_fly"})
    await app.invalid(gc.UNKNOWN_CMD)
    # not logged in: 1009, the code the JS SDK logs in again on
    await app.send({"cmd": "c2s_read", "data": {"did": DEVICE}})
    await app.invalid(gc.NOT_LOGGED_IN)
    # a wrong token, a wrong appid: login_res false and its code
    assert (await app.login({**ALICE, "token": "wrong-token-0123456789"}))["data"] == {"success": False}
    await app.invalid(gc.LOGIN_FAILED)
    assert (await app.login({**ALICE, "appid": "another-app"}))["data"] == {"success": False}
    await app.invalid(gc.LOGIN_FAILED)
    # the JS SDK's retries get through; a device offline and a write that is no data point are refused
    assert (await app.login(ALICE, auto_subscribe=True))["data"] == {"success": True}
    assert (await app.cmd("s2c_online_status"))["data"]["online"] is False
    await app.send({"cmd": "c2s_write", "req_sn": 3, "data": {"did": DEVICE, "attrs": {"unlock": True}}})
    assert (await app.invalid(gc.DEVICE_OFFLINE)) == {"error_code": gc.DEVICE_OFFLINE,
                                                      "msg": f"device {DEVICE} is offline", "did": DEVICE,
                                                      "res_sn": 3}
    await app.send({"cmd": "c2s_write", "data": {"did": DEVICE, "attrs": {"lock_state": "unlocked"}}})
    assert "read-only" in (await app.invalid(gc.BAD_ATTRS))["msg"]
    await app.send({"cmd": "c2s_write", "data": {"did": OTHER, "attrs": {"unlock": True}}})
    await app.invalid(gc.NOT_BOUND)
    # a read of an offline device answers what the bench knows
    await app.send({"cmd": "c2s_read", "data": {"did": DEVICE}})
    assert (await app.cmd("s2c_noti"))["data"] == {"did": DEVICE, "attrs": {"online": False}}
    # custom p0_type: no data point operations
    custom = await app_client()
    assert (await custom.login(MALLORY, p0_type="custom"))["data"]["success"] is True
    await custom.send({"cmd": "c2s_read", "data": {"did": OTHER}})
    await custom.invalid(gc.WRONG_P0_TYPE)
    assert bench.hub.errors["auth"] >= 2


async def test_a_silent_session_is_closed_at_its_heartbeat(bench, app_client):
    _users(bench)
    app = await app_client()
    assert (await app.login(ALICE, heartbeat_interval=1))["data"]["success"] is True
    loop = asyncio.get_running_loop()
    started = loop.time()
    await app.invalid(gc.HEARTBEAT_TIMEOUT)
    msg = await asyncio.wait_for(app.ws.receive(), 10)
    assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)
    assert app.ws.close_code == 1008
    print(f"heartbeat_interval 1 s: closed after {loop.time() - started:.2f} s")
    # a session that pings in time stays
    alive = await app_client()
    assert (await alive.login(ALICE, heartbeat_interval=1))["data"]["success"] is True
    for _ in range(4):
        await asyncio.sleep(0.6)
        await alive.send({"cmd": "ping"})
        await alive.cmd("pong")
    assert not alive.ws.closed
    await eventually(lambda: bench.hub.errors["gizwits"] >= 1)
