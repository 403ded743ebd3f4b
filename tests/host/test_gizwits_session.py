"""The Gizwits app API's sessions against a real bench on 127.0.0.1, with a
scripted JSON WebSocket device behind it (it answers commands as the test
says, or not at all): alarms an app must acknowledge, commands that fail or
time out, a session's command budget, the field clients' habits (the WeChat
demo's heartbeat in milliseconds, the JS SDK's login again and subscribe
again), and what a client may not send."""

import asyncio
import json

import aiohttp
import pytest

from host_tools.bench import gizwits
from host_tools.bench import gizwits_codec as gc

DEV = "giz-door-1"
TOKEN = "tok_giz_door"
BENCH_DEVICES = {DEV: TOKEN}
USER = {"appid": "app", "uid": "u1", "token": "u1-token-0123456789"}
TIMEOUT = 5


async def recv(ws, timeout=TIMEOUT):
    msg = await asyncio.wait_for(ws.receive(), timeout)
    assert msg.type == aiohttp.WSMsgType.TEXT, (msg.type, msg.data, ws.close_code)
    return json.loads(msg.data)


async def until(ws, cmd, timeout=TIMEOUT):
    """The next message whose cmd (or device message type) is `cmd`, skipping others."""
    while True:
        got = await recv(ws, timeout)
        if got.get("cmd", got.get("type")) == cmd:
            return got


@pytest.fixture
async def device(bench, session):
    ws = await session.ws_connect(bench.url)
    await ws.send_json({"type": "register", "device_id": DEV, "token": TOKEN})
    assert (await recv(ws))["type"] == "registered"
    yield ws
    await ws.close()


@pytest.fixture
async def app(bench, session):
    bench.store.add_user(USER["token"], USER["appid"], USER["uid"], [DEV])

    async def connect(**login):
        ws = await session.ws_connect(bench.http_url.replace("http", "ws", 1) + gizwits.PATH)
        await ws.send_json({"cmd": "login_req", "data": {**USER, "p0_type": "attrs_v4", "heartbeat_interval": 60,
                                                         **login}})
        assert await recv(ws) == {"cmd": "login_res", "data": {"success": True}}
        return ws
    return connect


async def test_alarms_must_be_acknowledged_and_telemetry_is_noted(bench, device, app):
    ws = await app()                                  # auto_subscribe by default
    assert (await until(ws, "s2c_online_status"))["data"]["online"] is True
    await device.send_json({"type": "event", "event_type": "door_forced", "payload": {"door": "front"}})
    got = await until(ws, "s2c_noti")
    assert got["data"] == {"did": DEV, "attrs": {"alarm_forced": True}} and "res_sn" not in got
    sn = got["req_sn"]
    await ws.send_json({"cmd": "c2s_ack", "res_sn": sn, "did": DEV})
    await ws.send_json({"cmd": "c2s_ack", "res_sn": sn, "did": DEV})     # once only
    assert (await until(ws, "s2c_invalid_msg"))["data"]["error_code"] == gc.UNKNOWN_SN
    await device.send_json({"type": "telemetry", "payload": {"temperature": 21.5, "humidity": 40.0}})
    got = await until(ws, "s2c_noti")
    assert got == {"cmd": "s2c_noti", "data": {"did": DEV, "attrs": {"temperature": 21.5, "humidity": 40.0}}}
    await ws.send_json({"cmd": "c2s_read", "req_sn": 5, "data": {"did": DEV}})
    got = await until(ws, "s2c_noti")
    assert got["res_sn"] == 5 and got["data"]["attrs"] == {"alarm_forced": True, "temperature": 21.5,
                                                           "humidity": 40.0, "online": True}
    await device.close()
    assert (await until(ws, "s2c_online_status"))["data"] == {"did": DEV, "passcode": "", "mac": DEV, "online": False}


async def test_a_failed_or_unanswered_command_is_reported(bench, device, app, monkeypatch):
    monkeypatch.setattr(gizwits, "ANSWER_S", 0.5)
    ws = await app()
    await ws.send_json({"cmd": "c2s_write", "req_sn": 1, "data": {"did": DEV, "attrs": {"door_mode": "locked"}}})
    command = await until(device, "command")
    assert (command["command"], command["payload"]) == ("door_mode", {"mode": "locked"})
    await device.send_json({"type": "event", "event_type": "command_result", "payload": {
        "id": command["id"], "command": "door_mode", "ok": False, "error": "door front is jammed"}})
    got = (await until(ws, "s2c_invalid_msg"))["data"]
    assert got["error_code"] == gc.COMMAND_FAILED and "jammed" in got["msg"] and got["res_sn"] == 1
    # nobody answers: given up after ANSWER_S
    await ws.send_json({"cmd": "c2s_write", "req_sn": 2, "data": {"did": DEV, "attrs": {"unlock": False}}})
    assert (await until(device, "command"))["command"] == "lock"
    got = (await until(ws, "s2c_invalid_msg"))["data"]
    assert got["error_code"] == gc.COMMAND_FAILED and "did not answer" in got["msg"] and got["res_sn"] == 2
    # an answer that comes: s2c_ack then s2c_noti, both paired with the req_sn
    await ws.send_json({"cmd": "c2s_write", "req_sn": 3, "data": {"did": DEV, "attrs": {"door_mode": "normal"}}})
    command = await until(device, "command")
    await device.send_json({"type": "event", "event_type": "command_result", "payload": {
        "id": command["id"], "command": "door_mode", "ok": True, "result": {"mode": "normal"}}})
    assert await until(ws, "s2c_ack") == {"cmd": "s2c_ack", "res_sn": 3, "did": DEV}
    got = await until(ws, "s2c_noti")
    assert got["res_sn"] == 3 and got["data"]["attrs"]["door_mode"] == "normal"


async def test_a_session_has_a_command_budget(bench, device, app, monkeypatch):
    monkeypatch.setattr(gizwits, "MAX_PENDING", 1)
    ws = await app()
    await ws.send_json({"cmd": "c2s_write", "data": {"did": DEV, "attrs": {"unlock": True}}})
    await ws.send_json({"cmd": "c2s_write", "data": {"did": DEV, "attrs": {"unlock": True}}})
    assert (await until(ws, "s2c_invalid_msg"))["data"]["error_code"] == gc.BUSY


async def test_field_clients(bench, device, app):
    # The WeChat demo: heartbeat_interval 180000 (ms) is 180 s
    await app(heartbeat_interval=180000)
    api = bench.app[gizwits.KEY]
    assert {s.heartbeat_s for s in api.sessions} == {180}
    # The JS SDK: auto_subscribe false, subscribe_req after each login_res, login again on the same socket
    ws = await app(heartbeat_interval=180, auto_subscribe=False)
    for _ in range(2):
        await ws.send_json({"cmd": "subscribe_req", "data": [{"did": DEV}]})
        assert (await until(ws, "subscribe_res"))["data"] == {
            "success": [{"did": DEV, "error_code": 0, "msg": "ok"}], "failed": []}
        assert (await until(ws, "s2c_online_status"))["data"]["online"] is True
        await ws.send_json({"cmd": "login_req", "data": {**USER, "p0_type": "attrs_v4", "heartbeat_interval": 180,
                                                         "auto_subscribe": False}})
        assert await until(ws, "login_res") == {"cmd": "login_res", "data": {"success": True}}
    await device.send_json({"type": "event", "event_type": "door_opened", "payload": {"door": "front"}})
    assert (await until(ws, "s2c_noti"))["data"]["attrs"] == {"door_position": "open"}   # once, not twice
    await ws.send_json({"cmd": "ping"})
    assert await recv(ws) == {"cmd": "pong"}


async def test_what_a_client_may_not_send(bench, app, session):
    ws = await app()
    await ws.send_str(json.dumps({"cmd": "ping", "pad": "x" * (bench.hub.max_message + 1)}))
    assert (await until(ws, "s2c_invalid_msg"))["data"]["error_code"] == gc.TOO_LARGE
    await ws.send_bytes(b"\x00\x01")
    assert (await until(ws, "s2c_invalid_msg"))["data"]["error_code"] == gc.MALFORMED_JSON
    await ws.send_json({"cmd": "ping"})
    assert await until(ws, "pong") == {"cmd": "pong"}
    # wrong tokens: the JS SDK's login and its three retries are answered, and the last one hangs up
    bad = await session.ws_connect(bench.http_url.replace("http", "ws", 1) + gizwits.PATH)
    for _ in range(gizwits.MAX_LOGIN_FAILURES):
        await bad.send_json({"cmd": "login_req", "data": {**USER, "token": "not-the-token-0123"}})
        assert await until(bad, "login_res") == {"cmd": "login_res", "data": {"success": False}}
    msg = await asyncio.wait_for(bad.receive(), TIMEOUT)
    while msg.type == aiohttp.WSMsgType.TEXT:
        msg = await asyncio.wait_for(bad.receive(), TIMEOUT)
    assert bad.close_code == 1008


async def test_no_login_in_time_is_closed(bench, session, monkeypatch):
    monkeypatch.setattr(bench.app[gizwits.KEY], "login_deadline_s", 0.5)
    ws = await session.ws_connect(bench.http_url.replace("http", "ws", 1) + gizwits.PATH)
    await ws.send_json({"cmd": "ping"})
    assert await recv(ws) == {"cmd": "pong"}
    assert (await recv(ws))["data"]["error_code"] == gc.NOT_LOGGED_IN
    msg = await asyncio.wait_for(ws.receive(), TIMEOUT)
    assert msg.type != aiohttp.WSMsgType.TEXT and ws.close_code == 1008


async def test_an_admin_binds_and_unbinds_on_the_running_bench_and_the_app_hears_it(bench, app, session):
    ws = await app()
    url = f"{bench.http_url}/api/bindings/{USER['uid']}/door-2"
    async with session.put(url) as r:
        assert r.status == 200 and await r.json() == {"uid": "u1", "device_id": "door-2", "bound": True,
                                                      "changed": True}
    assert await until(ws, "s2c_binding_changed") == {"cmd": "s2c_binding_changed",
                                                      "data": {"did": "door-2", "bind": True}}
    assert "door-2" in bench.store.devices_of("u1")
    async with session.delete(url) as r:
        assert r.status == 200 and (await r.json())["changed"] is True
    assert await until(ws, "s2c_binding_changed") == {"cmd": "s2c_binding_changed",
                                                      "data": {"did": "door-2", "bind": False}}
    async with session.put(f"{bench.http_url}/api/bindings/nobody/door-2") as r:
        assert r.status == 404 and "add it first" in (await r.json())["error"]
    async with session.delete(f"{bench.http_url}/api/bindings/nobody/door-2") as r:
        assert r.status == 404
