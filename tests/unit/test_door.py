# A door's lock on both runtimes: what the cloud may ask is checked before
# the relay moves, an unlock that cannot be journaled is not performed (the
# audit trail never misses a door opening), the exit button opens even
# when nothing can be journaled, and the relay's polarity is configuration.
from agent import config
from agent.codecs import json_ws
from agent.errors import CommandError
from agent.journal import Journal
from agent.peripherals.door import Door
from agent.peripherals.doors import Doors
from agent.tasks import cancel_and_wait
from agent.thing import Thing
from agent.uplinks.ws import WsUplink

from door_pins import REX, Board, Pins, close, counted
from support import araises, tmpdir

SITE = {"server": "ws://x/ws", "device_id": "d1", "token": "t", "max_frame": 16384,
        "connect_timeout_s": 2, "write_timeout_s": 2, "heartbeat_s": 30,
        "backoff_base_s": 0.01, "backoff_cap_s": 0.05, "backoff_reset_s": 1, "ca_file": None}


class FullJournal(Journal):
    def append(self, kind, name, value, t=None):
        raise OSError(28, "no space left on the flash")


def _journaled(journal, **fields):
    """A door whose events go to a real journal through the uplink, as on a device."""
    thing = Thing("d1")
    WsUplink(SITE, thing, None, journal, json_ws.Session("d1", "t"))
    pins = Pins()
    doors = Doors(thing)
    cfg = config.peripheral("door", dict({"relay_pin": 26, "sensor_pin": 27, "rex_pin": REX, "name": "front"},
                                         **fields))
    door = Door(thing, pins, cfg)
    doors.add(door)
    close(pins, cfg)
    return thing, pins, door


async def test_an_unlock_that_cannot_be_journaled_is_not_performed():
    thing, pins, _ = _journaled(FullJournal(tmpdir() + "/j"))
    before = counted("unlocks_not_journaled")
    e = await araises(CommandError, thing.call("unlock", {}))
    assert "could not be journaled" in str(e)
    assert pins.claimed[26].levels == [0]  # claimed locked, never energised
    assert thing.get("front.lock") == "locked"
    assert counted("unlocks_not_journaled") == before + 1


async def test_a_cloud_unlock_is_journaled_then_performed_and_ends_with_its_pulse():
    journal = Journal(tmpdir() + "/j")
    thing, pins, door = _journaled(journal)
    assert await thing.call("unlock", {"duration_ms": 500}) == {"lock": "unlocked", "duration_ms": 500}
    assert pins.claimed[26].levels == [0, 1]
    assert thing.get("front.lock") == "unlocked"
    rec = journal.read()[0]
    assert rec[2:4] == ["event", "unlocked"]
    assert rec[4] == {"door": "front", "source": "cloud", "duration_ms": 500}
    from agent.hal import ticks_add, ticks_ms
    door.poll(ticks_add(ticks_ms(), 1000))
    assert pins.claimed[26].levels == [0, 1, 0]
    assert thing.get("front.lock") == "locked"
    assert journal.read()[1][3:] == ["locked", {"door": "front", "reason": "timeout"}]


async def test_the_exit_button_opens_when_the_journal_refuses_everything():
    thing, pins, door = _journaled(FullJournal(tmpdir() + "/j"))
    before = counted("door_events_not_journaled")
    from agent.hal import ticks_add, ticks_ms
    t = ticks_ms()
    door.poll(t)
    door.poll(ticks_add(t, 100))  # released: the button's idle level is known
    pins.set(REX, 0)              # pressed (a button to ground)
    door.poll(ticks_add(t, 150))  # the very next poll
    assert pins.claimed[26].energised is True
    assert thing.get("front.lock") == "unlocked"
    assert counted("door_events_not_journaled") == before + 2   # rex and unlocked, both refused


def test_a_stuck_exit_button_at_start_opens_nothing():
    board = Board({"rex_pin": REX})
    board.pins.set(REX, 0)        # held down before the agent starts
    board.settle(0)
    assert board.relay().levels == [0]
    board.pins.set(REX, 1)
    board.settle(500)
    board.pins.set(REX, 0)        # a real press after that does open
    board.poll(1000)
    assert board.relay().levels == [0, 1]
    assert board.events.names()[:2] == ["rex", "unlocked"]


def test_a_bouncing_exit_button_is_one_press():
    board = Board({"rex_pin": REX})
    board.settle(0)
    for i, level in enumerate((0, 1, 0, 1, 0)):   # contact bounce, 10 ms apart
        board.pins.set(REX, level)
        board.poll(200 + 10 * i)
    assert board.events.names().count("rex") == 1


def test_an_exit_button_tapped_between_two_polls_still_opens():
    # The event loop was busy (a user store rewrite) for longer than the
    # press: the poll never saw the button down, the hal's latch did.
    board = Board({"rex_pin": REX})
    t = board.settle(0)
    board.pins.set(REX, 0)
    board.pins.set(REX, 1)
    board.poll(t + 1000)
    assert board.relay().levels == [0, 1] and board.events.names() == ["rex", "unlocked"]
    board.settle(t + 1100)
    assert board.events.names().count("rex") == 1   # told once, not again by the level


def test_the_bounce_of_a_release_is_no_second_press():
    board = Board({"rex_pin": REX})
    t = board.settle(0)
    board.pins.set(REX, 0)
    board.poll(t + 50)                    # seen pressed: opens
    for level in (1, 0, 1):               # let go, the contact rattling between polls
        board.pins.set(REX, level)
    board.settle(t + 100)
    assert board.events.names().count("rex") == 1


async def test_a_failing_poll_costs_that_poll_not_the_door():
    # A MemoryError in a journal listener right after the exit button
    # energised the relay: the loop goes on, the pulse ends, the button works.
    import asyncio
    board = Board({"rex_pin": REX, "unlock_ms": 100})
    fails = [1]

    def heap_full(kind, name, value):
        if kind == "event" and fails[0]:
            fails[0] -= 1
            raise MemoryError("memory allocation failed")
        return True
    board.thing.listen(heap_full)
    before = counted("door_poll_errors")
    task = asyncio.create_task(board.door().run())
    try:
        await asyncio.sleep(0.2)                  # the button's idle level is known
        board.pins.set(REX, 0)
        for _ in range(100):                      # bounded: 2 s at most
            await asyncio.sleep(0.02)
            if board.relay().levels == [0, 1, 0]:
                break
        assert board.relay().levels == [0, 1, 0], "the pulse did not end"
        assert counted("door_poll_errors") == before + 1 and not task.done()
        board.pins.set(REX, 1)
        await asyncio.sleep(0.2)
        board.pins.set(REX, 0)                    # the next press opens again
        await asyncio.sleep(0.1)
        assert board.relay().levels[:4] == [0, 1, 0, 1]
    finally:
        await cancel_and_wait(task)


def test_fail_safe_polarity_energises_the_relay_while_locked():
    # A maglock: released without power, so locked means energised - and the
    # pin is claimed energised, never passing through the unlock level.
    board = Board({"unlock_energised": False, "relay_active_high": False})
    relay = board.relay()
    assert relay.energised is True and relay.levels == [0]   # active low: energised = 0
    board.door().rex()
    assert relay.energised is False and relay.levels == [0, 1]
    board.poll(10000)
    assert relay.energised is True and relay.levels == [0, 1, 0]
    assert board.thing.get("front.lock") == "locked"


async def test_what_the_cloud_asks_is_checked_before_the_relay_moves():
    board = Board()
    for payload in ({"source": "fingerprint"}, {"source": "x" * 5000}, {"duration_ms": 10 ** 9},
                    {"duration_ms": "3000"}, {"open_forever": True}, {"door": "back"}, {"door": 2},
                    {"door": True}, {"door": ["front"]}):
        await araises(CommandError, board.thing.call("unlock", payload))
    assert board.relay().levels == [0]
    assert board.events.seen == []


async def test_several_doors_each_have_their_own_relay_pulse_and_properties():
    board = Board({"name": "front", "relay_pin": 26, "sensor_pin": 27, "unlock_ms": 1000},
                  {"name": "back", "relay_pin": 16, "sensor_pin": 17, "unlock_ms": 5000})
    e = await araises(CommandError, board.thing.call("unlock", {}))
    assert "front, back" in str(e)       # which door? the cloud is told its choices
    await board.thing.call("unlock", {"door": "back"})
    assert board.relay(16).energised and not board.relay(26).energised
    await board.thing.call("unlock", {"door": 1})   # the protocols' door numbers, from 1
    assert board.relay(26).energised
    board.poll(2500)
    assert board.thing.get("front.lock") == "locked" and board.thing.get("back.lock") == "unlocked"
    board.poll(6000)
    assert board.thing.get("back.lock") == "locked"
    assert [(n, v["door"]) for n, v in board.events.seen] == [
        ("unlocked", "back"), ("unlocked", "front"), ("locked", "front"), ("locked", "back")]


async def test_a_grant_says_who_and_by_which_credential():
    board = Board()
    ms = await board.door().grant("card", user="u7", credential="1234567", reason="granted")
    assert ms == 3000
    assert board.events.seen == [("unlocked", {"door": "front", "source": "card", "user": "u7",
                                               "credential": "1234567", "reason": "granted", "duration_ms": 3000})]


async def test_the_unlock_pulse_is_a_writable_property():
    board = Board()
    await board.thing.write("front.unlock_ms", 700)
    assert (await board.thing.call("unlock", {}))["duration_ms"] == 700
    await araises(CommandError, board.thing.write("front.unlock_ms", 50))
    await araises(CommandError, board.thing.write("front.lock", "unlocked"))
    assert (await board.thing.call("door_settings", {"held_open_s": 120}))["held_open_s"] == 120
    await araises(CommandError, board.thing.call("door_settings", {"sensor": "no"}))


async def test_lock_is_refused_while_the_door_is_held_open_by_its_mode():
    board = Board()
    await board.thing.call("door_mode", {"mode": "normal_open"})
    e = await araises(CommandError, board.thing.call("lock", {}))
    assert "normal_open" in str(e)      # lock does not pretend
    assert board.thing.get("front.lock") == "unlocked"
    await board.thing.call("door_mode", {"door": "front", "mode": "normal"})
    assert board.thing.get("front.lock") == "locked"
    await board.thing.call("unlock", {})
    assert await board.thing.call("lock", {"door": 1}) == {"lock": "locked"}
    assert board.relay().levels == [0, 1, 0, 1, 0]


def test_the_door_is_claimed_locked_and_unknown_before_its_sensor_is_read():
    board = Board()
    assert board.relay().levels == [0]
    assert board.thing.get("front.door") == "unknown"
    assert board.thing.get("front.alarms") == [] and board.thing.get("front.mode") == "normal"
