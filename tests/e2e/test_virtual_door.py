# The door on the virtual board end to end, per runtime: the real agent,
# the emulator's pins over loopback, the bench. The exit button opens with
# the cloud gone (and what happened reaches the cloud once it is back); a
# door opened with no grant is forced; tamper is reported; the cloud clears
# the alarms.
import pytest

from e2e_support import DEVICE, SITE, TOKEN, eventually

REX_PIN, TAMPER_PIN = 14, 13


@pytest.fixture
def rig_options():
    return {"device_id": DEVICE, "token": TOKEN, "site": SITE,
            "peripherals": {"door": {"rex_pin": REX_PIN, "tamper_pin": TAMPER_PIN, "unlock_ms": 1500}}}


async def _door_seen_closed(admin):
    # The sensor is read (its debounce passed), and the exit button's and the
    # tamper switch's idle levels with it, in the same polls.
    async def closed():
        status = await admin.command("status", cmd_id="s")
        return status["payload"]["result"]["properties"]["front.door"] == "closed"
    for _ in range(100):
        if await closed():
            return
    raise AssertionError("the agent never read the door sensor")


def _names(bench):
    return [r["event_type"] for r in bench.store.event_rows(DEVICE)]


async def test_the_exit_button_opens_with_the_cloud_down(runtime, rig, bench, admin):
    await rig.start_agent(runtime=runtime)
    await rig.wait_registered(timeout=20)
    await _door_seen_closed(admin)
    emu = rig.session.emulator
    relay = 26
    await rig.stop_bench()                       # the cloud goes away
    emu.press_rex()
    await emu.wait_output(relay, 1, timeout=5)   # egress needs no network
    assert emu.unlocked() is True
    await emu.wait_output(relay, 0, timeout=5)   # and the pulse ends by itself
    bench = await rig.restart_bench()
    rows = await eventually(lambda: len(bench.store.event_rows(DEVICE, "locked")) and bench.store.event_rows(DEVICE),
                            timeout=30)
    names = [r["event_type"] for r in rows]
    assert names[names.index("rex"):] == ["rex", "unlocked", "locked"]
    unlocked = rows[names.index("unlocked")]["payload"]
    assert unlocked == {"door": "front", "source": "rex", "duration_ms": 1500}


async def test_forced_open_and_tamper_reach_the_cloud_which_clears_them(runtime, rig, bench, admin):
    await rig.start_agent(runtime=runtime)
    await rig.wait_registered(timeout=20)
    await _door_seen_closed(admin)
    emu = rig.session.emulator
    emu.set_door_open(True)                      # nobody unlocked it
    await admin.next(lambda m: m.get("event_type") == "door_forced")
    emu.set_door_open(False)
    emu.set_tamper(True)
    tamper = await admin.next(lambda m: m.get("event_type") == "door_tamper")
    assert tamper["payload"] == {"door": "front", "active": True}
    status = (await admin.command("status", cmd_id="s1"))["payload"]["result"]
    assert status["properties"]["front.alarms"] == ["forced", "tamper"]
    emu.set_tamper(False)
    await admin.next(lambda m: m.get("event_type") == "door_tamper" and m["payload"]["active"] is False)
    cleared = await admin.command("clear_alarm", {"door": "front"}, cmd_id="c1")
    assert cleared["payload"]["ok"] is True and cleared["payload"]["result"] == {"alarms": []}
    await eventually(lambda: _names(bench).count("alarm_cleared") == 2, timeout=10)
    assert emu.relay_energised() is False        # none of it moved the lock
