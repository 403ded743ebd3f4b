"""The foundation both app APIs stand on: the one Thing-model mapping
(thing_map), app users and their bindings (store, tokens hashed as
admins' are), the hub's watchers, data points and bindings, and
`doorlink bench add-user`."""

import asyncio
import sqlite3
import subprocess
import sys

import pytest

from agent import records as r
from host_tools.bench import BenchStore
from host_tools.bench import hub as hub_module
from host_tools.bench import thing_map as tm
from host_tools.bench.hub import Hub
from host_tools.bench.store import User
from host_tools.paths import ROOT

TOKEN = "user-token-0123456789"
DEV, OTHER = "door-g1", "door-g2"


def _event(event_type, payload, device_id=DEV):
    return {"type": "event", "device_id": device_id, "event_type": event_type, "payload": payload,
            "received_at": 1.0}


# -- thing_map ---------------------------------------------------------------------------
def test_points_are_named_once_and_cover_the_issue():
    names = [p.name for p in tm.POINTS]
    assert len(set(names)) == len(names) and len({p.tsl_id for p in tm.POINTS}) == len(names)
    for needed in ("lock_state", "door_position", "alarm_forced", "alarm_held_open", "alarm_tamper",
                   "temperature", "humidity", "last_punch_user", "last_access", "online", "unlock"):
        assert needed in tm.BY_NAME
    assert {s.command for s in tm.SERVICES} >= {"unlock", "users_sync", "raw"}
    table = tm.table_markdown()
    assert "| `lock_state` | `LockState` |" in table and "`users_sync`" in table


@pytest.mark.parametrize(("obj", "attrs"), [
    (_event(r.UNLOCKED, {"door": "front", "source": "card", "user": "7", "reason": None}),
     {"lock_state": "unlocked", "unlock": True, "last_access": "granted", "last_access_user": "7",
      "last_access_source": "card", "last_access_reason": ""}),
    (_event(r.LOCKED, {"door": "front", "reason": "timeout"}), {"lock_state": "locked", "unlock": False}),
    (_event(r.ACCESS_DENIED, {"door": "front", "source": "card", "reason": "unknown_card"}),
     {"last_access": "denied", "last_access_user": "", "last_access_source": "card",
      "last_access_reason": "unknown_card"}),
    (_event(r.DOOR_OPENED, {"door": "front"}), {"door_position": "open"}),
    (_event(r.DOOR_CLOSED, {"door": "front"}), {"door_position": "closed", "alarm_held_open": False}),
    (_event(r.DOOR_FORCED, {"door": "front"}), {"alarm_forced": True}),
    (_event(r.DOOR_HELD_OPEN, {"door": "front", "open_s": 30}), {"alarm_held_open": True}),
    (_event(r.DOOR_TAMPER, {"door": "front", "active": False}), {"alarm_tamper": False}),
    (_event(r.ALARM_CLEARED, {"door": "front", "alarm": "forced", "by": "cloud"}), {"alarm_forced": False}),
    (_event(r.DOOR_MODE, {"door": "front", "mode": "normal_open", "by": "cloud"}), {"door_mode": "normal_open"}),
    (_event(r.PUNCH, {"user": "12", "time": "2026-12-07T09:00:00"}),
     {"last_punch_user": "12", "last_punch_time": "2026-12-07T09:00:00"}),
    ({"type": "telemetry", "device_id": DEV, "payload": {"temperature": 21.5, "humidity": 40, "x": 1}},
     {"temperature": 21.5, "humidity": 40}),
    ({"type": "device_status", "device_id": DEV, "status": "offline"}, {"online": False}),
    (_event(r.COMMAND_RESULT, {"id": 1, "command": "unlock", "ok": True}), {}),
    ({"type": "telemetry", "device_id": DEV, "payload": {"temperature": True}}, {}),
    ("not a dict", {}),
])
def test_broadcasts_become_data_points(obj, attrs):
    assert tm.attrs_from_broadcast(obj) == attrs
    assert all(tm.BY_NAME[name] for name in attrs)


def test_writes_become_agent_commands_or_name_the_attribute():
    assert tm.commands_for_write({"unlock": True}) == [("unlock", {})]
    assert tm.commands_for_write({"Unlock": False, "door_mode": "locked"}) == [("lock", {}),
                                                                               ("door_mode", {"mode": "locked"})]
    for attrs, words in (({"lock_state": "unlocked"}, "'lock_state' is read-only"),
                         ({"nope": 1}, "unknown data point 'nope'"),
                         ({"unlock": 1}, "'unlock' must be a bool, got 1"),
                         ({"door_mode": "open"}, "'door_mode' must be one of normal, normal_open, locked"),
                         ({}, "non-empty"), ([1], "non-empty")):
        with pytest.raises(ValueError, match=words):
            tm.commands_for_write(attrs)


def test_services_and_events():
    assert tm.service_command("unlock", {"door": "front", "duration_ms": 3000}) == (
        "unlock", {"door": "front", "duration_ms": 3000})
    assert tm.service_command("user_sync", {"phase": "begin"}) == ("users_sync", {"phase": "begin"})
    assert tm.service_command("raw", {"data": "AA=="}) == ("raw", {"data": "AA=="})
    for args, words in ((("fly", {}), "unknown service 'fly'"), (("unlock", {"x": 1}), "no parameter 'x'"),
                        (("unlock", {"duration_ms": 10**9}), "duration_ms must be an integer"),
                        (("unlock", [1]), "must be an object")):
        with pytest.raises(ValueError, match=words):
            tm.service_command(*args)
    assert tm.event_from_broadcast(_event(r.DOOR_FORCED, {"door": "front"})) == (
        "ERROR", "door_forced", {"door": "front"})
    assert tm.event_from_broadcast(_event(r.DOOR_HELD_OPEN, {"door": "front", "open_s": 30}))[0] == "WARN"
    assert tm.event_from_broadcast(_event(r.ACCESS_DENIED, {"door": "front"}))[:2] == ("INFO", "access_denied")
    assert tm.event_from_broadcast(_event(r.UNLOCKED, {"door": "front"}))[:2] == ("INFO", "access_granted")
    assert tm.event_from_broadcast(_event(r.DOOR_TAMPER, {"door": "front", "active": False}))[0] == "INFO"
    assert tm.event_from_broadcast(_event(r.COMMAND_RESULT, {"id": 1})) is None
    assert tm.event_from_broadcast({"type": "telemetry", "device_id": DEV, "payload": {}}) is None


# -- users and bindings in the store -------------------------------------------------------
def test_users_are_stored_hashed_and_bound(tmp_path):
    db = tmp_path / "b.sqlite3"
    store = BenchStore(db)
    try:
        user = store.add_user(TOKEN, None, "u1", [DEV])
        assert user == User("u1", "doorlink", (DEV,))
        store.add_user(TOKEN + "x", "app2", "u2", [])
        assert store.bind("u2", OTHER) and not store.bind("u2", OTHER)
        assert store.bind("u2", DEV)
        assert store.devices_of("u2") == [DEV, OTHER] and store.users_of(DEV) == ["u1", "u2"]
        assert store.unbind("u2", DEV) and not store.unbind("u2", DEV)
        assert store.users_of(DEV) == ["u1"]
        assert store.user_for_token(TOKEN).uid == "u1" and store.user_for_token("wrong" * 4) is None
        with pytest.raises(ValueError, match="at least 16"):
            store.add_user("short", None, "u3", [])
        with pytest.raises(ValueError, match="no user"):
            store.bind("nobody", DEV)
    finally:
        store.close()
    rows = sqlite3.connect(db).execute("SELECT token FROM users").fetchall()
    assert all(row[0].startswith("scrypt$") and TOKEN not in row[0] for row in rows)


# -- the hub: users, watchers, data points, bindings ------------------------------------------
@pytest.fixture
async def hub(tmp_path):
    h = Hub(BenchStore(tmp_path / "h.sqlite3"))
    h.store.add_user(TOKEN, "app", "u1", [DEV])
    yield h
    await h.shutdown()
    h.store.close()


async def test_check_user(hub):
    assert (await hub.check_user("app", "u1", TOKEN)).devices == (DEV,)
    assert (await hub.check_user(None, "u1", TOKEN)).uid == "u1"
    assert await hub.check_user("other-app", "u1", TOKEN) is None
    assert await hub.check_user("app", "u1", TOKEN + "?") is None
    assert await hub.check_user("app", "nobody", TOKEN) is None
    assert (await hub.user_for_token(TOKEN)).uid == "u1" and await hub.user_for_token("x" * 20) is None


async def test_watchers_hear_broadcasts_and_bindings_and_attrs_are_kept(hub):
    heard = []

    async def watcher(obj):
        heard.append(obj)

    hub.watch(watcher)
    await hub.broadcast(_event(r.UNLOCKED, {"door": "front", "source": "cloud"}))
    await hub.broadcast({"type": "telemetry", "device_id": DEV, "payload": {"temperature": 20.0}})
    assert [o["type"] for o in heard] == ["event", "telemetry"]
    assert hub.attrs(DEV) == {"lock_state": "unlocked", "unlock": True, "last_access": "granted",
                              "last_access_user": "", "last_access_source": "cloud", "last_access_reason": "",
                              "temperature": 20.0, "online": False}
    assert hub.attrs(OTHER) == {"online": False}
    assert await hub.bind("u1", OTHER) and not await hub.bind("u1", OTHER)
    assert await hub.unbind("u1", OTHER) and not await hub.unbind("u1", OTHER)
    assert heard[2:] == [{"type": "binding_changed", "uid": "u1", "device_id": OTHER, "bound": True},
                         {"type": "binding_changed", "uid": "u1", "device_id": OTHER, "bound": False}]
    hub.unwatch(watcher)
    await hub.broadcast(_event(r.LOCKED, {"door": "front"}))
    assert len(heard) == 4 and hub.attrs(DEV)["lock_state"] == "locked"


async def test_a_slow_watcher_is_dropped_without_holding_the_others(hub, monkeypatch):
    monkeypatch.setattr(hub_module, "ADMIN_SEND_S", 0.2)
    dropped, heard = [], []
    never = asyncio.Event()

    async def slow(obj):
        await never.wait()

    async def fast(obj):
        heard.append(obj)

    hub.watch(slow, lambda: dropped.append("slow"))
    hub.watch(fast)
    await asyncio.wait_for(hub.broadcast(_event(r.DOOR_OPENED, {"door": "front"})), 5)
    await asyncio.wait_for(hub.broadcast(_event(r.DOOR_CLOSED, {"door": "front"})), 5)
    assert dropped == ["slow"] and len(heard) == 2
    assert hub.errors["slow_watcher"] == 1


# -- doorlink bench add-user ----------------------------------------------------------------
def _doorlink(*args, cwd):
    return subprocess.run([sys.executable, "-m", "host_tools.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})


def test_cli_add_user(tmp_path):
    db = tmp_path / "cli.sqlite3"
    res = _doorlink("bench", "add-user", "--token", TOKEN, "--appid", "a1", "--uid", "alice", "--device", DEV,
                    "--device", OTHER, "--db", str(db), cwd=tmp_path)
    assert res.returncode == 0 and f"user alice (appid a1) bound to {DEV}, {OTHER}" in res.stdout, res.stderr
    res = _doorlink("bench", "--db", str(db), "add-user", "--token", TOKEN, "--device", DEV, cwd=tmp_path)
    assert res.returncode == 0 and f"user user-{DEV} (appid doorlink)" in res.stdout, res.stderr
    store = BenchStore(db)
    try:
        assert store.user("alice").devices == (DEV, OTHER) and store.user("alice").appid == "a1"
        assert store.user_for_token(TOKEN) is not None
    finally:
        store.close()
    for args, words in ((("--token", "short", "--device", DEV), "at least 16"),
                        (("--token", TOKEN, "--device", ""), "device id must be a non-empty string")):
        res = _doorlink("bench", "add-user", *args, "--db", str(db), cwd=tmp_path)
        assert res.returncode == 2 and "Traceback" not in res.stderr and words in res.stderr, res.stderr
    res = _doorlink("bench", "add-user", "--token", TOKEN, "--db", str(db), cwd=tmp_path)
    assert res.returncode == 2 and "--device" in res.stderr


def test_the_documented_mapping_is_thing_maps():
    page = (ROOT / "docs" / "protocols" / "gizwits-app.md").read_text()
    shown = page.split("<!-- thing_map table: begin -->\n", 1)[1].split("\n<!-- thing_map table: end -->", 1)[0]
    assert shown == tm.table_markdown(), "regenerate the table: python -c 'from host_tools.bench import " \
                                         "thing_map; print(thing_map.table_markdown())'"
