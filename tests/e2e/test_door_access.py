# Offline access decisions on the virtual board, per runtime: 10,000 users
# synced from the cloud in pages, then cards and PINs at the Wiegand reader
# decide with the cloud gone, under the board's heap budget (the agent runs
# with -X heapsize from the board file: a MemoryError fails the test).
import time

import pytest

from e2e_support import DEVICE, SITE, TOKEN, admin_of, eventually

USERS = 10000
PAGE = 50          # users per users_sync page (docs/door-controller.md, section 5)
RELAY = 26
CARD0 = 5000000    # user i holds card CARD0 + 7 * i


def _user(i):
    u = {"id": "u%05d" % i, "name": "User %d" % i, "cards": [CARD0 + 7 * i]}
    if i == 42:
        u["pin"] = "4711"
    if i == 43:
        u["enabled"] = False
    return u


@pytest.fixture
def rig_options():
    # Short pulses: each grant below must relock before the next.
    return {"device_id": DEVICE, "token": TOKEN, "site": SITE, "peripherals": {"door": {"unlock_ms": 300}}}


async def _ok(admin, name, payload, cmd_id):
    await admin.ws.send_json({"type": "command", "device_id": DEVICE, "command": name, "payload": payload,
                              "id": cmd_id})
    # The answer, or the device gone without one (a page refused for want
    # of a free block closes the link: 1009): said at once, not at a timeout.
    got = await admin.next(lambda m: (m.get("event_type") == "command_result" and m["payload"].get("id") == cmd_id)
                           or (m.get("type") == "device_status" and m.get("status") == "offline"), timeout=60)
    assert got.get("type") != "device_status", "%s went offline before answering %s %s" % (DEVICE, name, cmd_id)
    got = got["payload"]
    assert got["ok"] is True, got
    return got.get("result") or {}


def _events(bench, name):
    return [r["payload"] for r in bench.store.event_rows(DEVICE, name)]


async def test_ten_thousand_users_then_cards_and_pins_with_the_cloud_gone(runtime, rig, bench, admin, figure):
    await rig.start_agent(runtime=runtime)
    await rig.wait_registered(timeout=20)
    started = time.perf_counter()
    await _ok(admin, "users_sync", {"phase": "begin"}, "b")
    for p in range(0, USERS, PAGE):
        await _ok(admin, "users_sync", {"phase": "page", "users": [_user(i) for i in range(p, p + PAGE)]}, "p%d" % p)
    done = await _ok(admin, "users_sync", {"phase": "commit"}, "c")
    assert done["count"] == USERS, done
    synced_s = time.perf_counter() - started
    await rig.stop_bench()                       # decisions need no cloud

    emu = rig.session.emulator
    await emu.swipe_card("front-reader", CARD0 + 7 * 9876)
    await emu.wait_output(RELAY, 1, timeout=10)  # granted: the relay energises
    await emu.wait_output(RELAY, 0, timeout=10)
    await emu.swipe_card("front-reader", CARD0 + 7 * 43)       # disabled
    await emu.swipe_card("front-reader", 1234)                  # nobody's
    await emu.press_keys("front-reader", "4711#")               # user 42's PIN
    await emu.wait_output(RELAY, 1, timeout=10)
    await emu.wait_output(RELAY, 0, timeout=10)

    bench = await rig.restart_bench()
    await eventually(lambda: len(_events(bench, "unlocked")) >= 2 and len(_events(bench, "access_denied")) >= 2,
                     timeout=30)
    unlocked = _events(bench, "unlocked")
    assert [(e["user"], e["source"]) for e in unlocked] == [("u09876", "card"), ("u00042", "pin")]
    assert unlocked[0]["credential"] == str(CARD0 + 7 * 9876)
    denied = _events(bench, "access_denied")
    assert [(e.get("user"), e["reason"]) for e in denied] == [("u00043", "disabled"), (None, "unknown_card")]
    # A PIN is never journaled: no payload holds it (a time stamp may hold the digits).
    payloads = [r["payload"] for r in bench.store.event_rows(DEVICE)]
    assert not [p for p in payloads if "pin" in p or "4711" in [str(v) for v in p.values()]]

    async with admin_of(bench) as fresh:        # the first admin's socket went with the first bench
        status = (await fresh.command("status", cmd_id="st"))["payload"]["result"]
    figure("%s door agent: %d users synced over JSON WebSocket in %.1f s (pages of %d)"
           % (runtime, USERS, synced_s, PAGE))
    if runtime == "micropython":
        figure("MicroPython door agent with %d users, after sync and decisions: peak live heap %d bytes of %d KB"
               % (USERS, status["heap_peak"], status["heap_budget_kb"]))
        assert 0 < status["heap_peak"] < status["heap_budget_kb"] * 1024
