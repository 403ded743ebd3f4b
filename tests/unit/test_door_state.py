# What a door keeps across a restart, on both runtimes: the mode the cloud
# set (a lockdown a restart lifted would let cards in again), the latched
# forced and tamper alarms, and the settings the cloud tuned - on a real
# file system, each restart a new Board over the same folder. A kept
# state that is not what the door wrote is ignored, counted and told.
from agent.errors import CommandError
from agent.peripherals.door_state import PREFIX

from door_pins import REX, SENSOR, TAMPER, Board, counted
from support import araises, tmpdir, write_json


def _restart(folder, fields=None, refuse=False):
    """The board after a restart: new pins, a new Thing, the same flash."""
    return Board(fields or {}, folder=folder, refuse=refuse)


async def test_a_lockdown_survives_a_restart_and_the_first_poll_journals_it():
    folder = tmpdir()
    board = Board(folder=folder)
    await board.thing.call("door_mode", {"mode": "locked"})
    after = _restart(folder)
    # In force before the first poll: no card opens it in between.
    assert after.door().refusal() == "door_locked_down"
    await araises(CommandError, after.door().grant("card", user="u1"))
    after.settle(0)
    assert after.events.seen == [("door_mode", {"door": "front", "mode": "locked", "by": "restart"})]
    assert after.thing.get("front.mode") == "locked" and 1 not in after.relay().levels
    # Lifted by the cloud: the next restart starts normal, and says nothing.
    await after.thing.call("door_mode", {"mode": "normal"})
    again = _restart(folder)
    again.settle(0)
    assert again.door().refusal() is None and again.events.seen == []


async def test_normal_open_survives_a_restart_journaled_before_the_relay_moves():
    folder = tmpdir()
    board = Board(folder=folder)
    await board.thing.call("door_mode", {"mode": "normal_open"})
    after = _restart(folder)
    assert after.relay().levels == [0]           # claimed locked: the unlock waits for the journal
    after.settle(0)
    assert after.events.names() == ["unlocked", "door_mode"]
    assert after.events.seen[0][1] == {"door": "front", "source": "restart", "reason": "normal_open"}
    assert after.relay().levels == [0, 1] and after.thing.get("front.mode") == "normal_open"


async def test_a_restored_hold_open_that_cannot_be_journaled_leaves_the_door_normal():
    folder = tmpdir()
    board = Board(folder=folder)
    await board.thing.call("door_mode", {"mode": "normal_open"})
    before = counted("door_mode_not_journaled")
    after = _restart(folder, refuse=True)
    after.settle(0)
    assert after.relay().levels == [0] and after.thing.get("front.mode") == "normal"
    assert counted("door_mode_not_journaled") == before + 1


async def test_latched_alarms_and_tuned_settings_survive_a_restart():
    folder = tmpdir()
    fields = {"tamper_pin": TAMPER}
    board = Board(fields, folder=folder)
    t = board.settle(0)
    board.pins.set(SENSOR, 1)                    # forced open
    board.pins.set(TAMPER, 1)                    # and the cover off
    board.settle(t + 100)
    assert board.thing.get("front.alarms") == ["forced", "tamper"]
    assert await board.thing.call("door_settings", {"unlock_ms": 7000, "held_open_s": 600}) == \
        {"unlock_ms": 7000, "held_open_s": 600, "sensor": "nc"}
    after = _restart(folder, fields)
    assert after.thing.get("front.alarms") == ["forced", "tamper"]
    assert after.thing.get("front.unlock_ms") == 7000 and after.door().cfg["held_open_s"] == 600
    # Cleared by the cloud (the cover back on): gone after the next restart too.
    after.pins.set(TAMPER, 0)
    after.settle(0)
    assert after.door().clear_alarms() == []
    again = _restart(folder, fields)
    assert again.thing.get("front.alarms") == []
    assert again.thing.get("front.unlock_ms") == 7000


def test_a_held_open_alarm_is_not_kept():
    # It ends with the door closing, which a restart cannot see happen.
    folder = tmpdir()
    board = Board({"held_open_s": 1}, folder=folder)
    board.pins.set(SENSOR, 1)                    # found open at start: not forced
    board.settle(0)
    board.poll(2000)
    assert board.thing.get("front.alarms") == ["held_open"]
    assert _restart(folder).thing.get("front.alarms") == []


async def test_a_kept_state_that_is_not_ours_is_ignored_counted_and_told():
    good = {"mode": "locked", "alarms": ["forced"], "unlock_ms": 3000, "held_open_s": 30}
    bad = ["garbage", "", "[]", "{\"mode\": \"locked\"}", "9" * 5000, "\xff\xfe{",
           dict(good, mode="open_sesame"), dict(good, unlock_ms=True), dict(good, unlock_ms=60001),
           dict(good, held_open_s=0), dict(good, alarms=["forced", "forced"]), dict(good, alarms="forced"),
           dict(good, alarms=["held_open"]), dict(good, extra=1)]
    for content in bad:
        folder = tmpdir()
        write_json(folder, PREFIX + "front", content)
        before = counted("door_state_bad")
        after = _restart(folder, {"rex_pin": REX})
        assert counted("door_state_bad") == before + 1, content
        # Normal, not locked: a lockdown nobody can prove shuts out every
        # card holder while the cloud is away; the cloud hears it and can
        # set the lockdown again.
        assert after.door().refusal() is None and after.thing.get("front.alarms") == [], content
        after.settle(0)
        assert after.events.seen == [("door_mode", {"door": "front", "mode": "normal", "by": "restart"})], content
        await after.thing.call("door_mode", {"mode": "locked"})   # and the door works on, keeping it again
        assert _restart(folder).door().refusal() == "door_locked_down"


async def test_a_flash_that_refuses_the_state_costs_the_memory_not_the_lockdown():
    board = Board(folder=tmpdir() + "/not-there")
    before = counted("door_state_errors")
    assert await board.thing.call("door_mode", {"mode": "locked"}) == {"mode": "locked"}
    assert board.door().refusal() == "door_locked_down" and counted("door_state_errors") == before + 1
