"""GpiozeroIO (Raspberry Pi hal) against gpiozero's MockFactory: CPython only."""

import asyncio
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory

from agent import config
from agent.config import load_board
from agent.hal import ticks_add, ticks_ms
from agent.hal.gpiozero_io import GpiozeroIO
from agent.peripherals.door import Door
from agent.peripherals.doors import Doors
from agent.thing import Thing

ROOT = Path(__file__).resolve().parents[2]
RELAY, SENSOR, REX = 17, 27, 22


class Board:
    """One door on MockFactory pins, its events, and the test's own clock:
    poll(ms) runs the door's poll as if `ms` had passed since it was made."""

    def __init__(self, io, **fields):
        self.thing = Thing("dev")
        self.events = []
        self.thing.listen(lambda kind, name, value: self.events.append(name) if kind == "event" else None)
        cfg = config.peripheral("door", dict({"name": "front", "relay_pin": RELAY, "sensor_pin": SENSOR,
                                              "rex_pin": REX}, **fields))
        self.door = Door(self.thing, io, cfg)
        Doors(self.thing).add(self.door)
        self.t0 = ticks_ms()

    def poll(self, *at_ms):
        for ms in at_ms:
            self.door.poll(ticks_add(self.t0, ms))


def levels(pin):
    """Every level the pin had since it was claimed (MockPin's first entry is
    its state before the claim, when it was no output at all)."""
    return [int(s.state) for s in pin.states[1:]]



async def until(cond, timeout=1.0):
    """Poll cond() until true; bounded so a broken door fails, not hangs."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not cond():
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


def test_rpi_board_file_loads():
    board = load_board(str(ROOT / "boards" / "rpi4-door.json"))
    assert board["hal"] == "gpiozero" and board["runtimes"] == ["cpython"]
    door, reader, climate = board["peripherals"]
    assert door["type"] == "door"
    assert (door["relay_pin"], door["relay_active_high"], door["unlock_energised"]) == (17, True, True)
    assert (door["sensor_pin"], door["sensor"], door["rex_pin"], door["unlock_ms"]) == (27, "nc", 22, 3000)
    assert (reader["type"], reader["d0_pin"], reader["d1_pin"], reader["door"]) == ("wiegand", 24, 25, "front")
    assert (climate["type"], climate["i2c_bus"], climate["i2c_address"]) == ("climate", 1, 0x76)


@pytest.mark.parametrize(("active_high", "unlock_energised"), [(True, True), (False, True), (True, False),
                                                               (False, False)])
async def test_the_relay_level_follows_polarity_and_lock_type(factory, io, active_high, unlock_energised):
    board = Board(io, relay_active_high=active_high, unlock_energised=unlock_energised)
    relay = factory.pin(RELAY)
    unlock_level = int(unlock_energised == active_high)
    assert relay.state == 1 - unlock_level, "claimed at the locked level"
    await board.thing.call("unlock", {"duration_ms": 200})
    assert relay.state == unlock_level and board.thing.get("front.lock") == "unlocked"
    board.poll(1000)
    assert relay.state == 1 - unlock_level and board.thing.get("front.lock") == "locked"
    assert unlock_level not in levels(relay)[:-2]   # the unlock level only for the one pulse


def test_the_exit_button_unlocks_within_one_poll(factory, io):
    board = Board(io)
    relay, rex, sensor = factory.pin(RELAY), factory.pin(REX), factory.pin(SENSOR)
    sensor.drive_low()                       # NC contact closed: the door is shut
    board.poll(0, 100)
    rex.drive_low()                          # pressed: a button to ground, against the Pi's pull-up
    board.poll(150)
    assert relay.state == 1 and board.events == ["rex", "unlocked"]
    rex.drive_high()
    sensor.drive_high()                      # the person pushes the door open
    board.poll(200, 300)
    assert board.events[-1] == "door_opened" and board.thing.get("front.alarms") == []


def test_an_exit_button_tapped_between_two_polls_still_opens(factory, io):
    # The event loop was busy longer than the press: gpiozero's edge
    # callback latched it, and the next poll opens (late, but it opens).
    board = Board(io)
    relay, rex, sensor = factory.pin(RELAY), factory.pin(REX), factory.pin(SENSOR)
    sensor.drive_low()
    board.poll(0, 100)
    rex.drive_low()
    rex.drive_high()
    board.poll(1000)
    assert relay.state == 1 and board.events == ["rex", "unlocked"]
    board.poll(1100, 1200)
    assert board.events.count("rex") == 1


def test_a_door_opened_while_locked_is_forced(factory, io):
    board = Board(io)
    sensor = factory.pin(SENSOR)
    sensor.drive_low()
    board.poll(0, 100)
    sensor.drive_high()
    board.poll(200, 300)
    assert board.events == ["door_opened", "door_forced"] and board.thing.get("front.alarms") == ["forced"]
    assert levels(factory.pin(RELAY)) == []  # the relay never moved from its claimed level


async def test_an_unlocked_door_relocks_once_opened_and_closed(factory, io):
    board = Board(io, unlock_ms=60000)
    relay, sensor = factory.pin(RELAY), factory.pin(SENSOR)
    sensor.drive_low()
    board.poll(0, 100)
    await board.thing.call("unlock", {})
    sensor.drive_high()
    board.poll(200, 300)
    assert relay.state == 1
    sensor.drive_low()
    board.poll(400, 500)
    assert relay.state == 0 and board.events == ["unlocked", "door_opened", "door_closed", "locked"]
    assert levels(relay) == [1, 0]


async def test_the_supervised_loop_reads_the_pins(factory, io):
    board = Board(io)
    sensor = factory.pin(SENSOR)
    sensor.drive_low()
    task = asyncio.create_task(board.door.run())
    try:
        assert await until(lambda: board.thing.get("front.door") == "closed")
        factory.pin(REX).drive_low()
        assert await until(lambda: board.thing.get("front.lock") == "unlocked")
        assert factory.pin(RELAY).state == 1
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_pull_up_still_reads_raw_level(factory):
    # With the internal pull-up gpiozero inverts its own value; the hal must not.
    io = GpiozeroIO(pin_factory=factory)
    try:
        sensor = io.input(SENSOR, pull="up")
        assert sensor.value() == 1  # pulled up, switch open
        factory.pin(SENSOR).drive_low()
        assert sensor.value() == 0
    finally:
        io.close()


def test_at_exit_a_relay_stays_driven_at_its_locked_level():
    # gpiozero's exit handler closes every device, and a closed lgpio pin
    # is a floating input: a maglock (locked = energised) would open on
    # every restart. The hal's own exit hook runs first and takes the relay
    # out of gpiozero's hands, back at its locked level.
    from gpiozero import Device
    from gpiozero.devices import _devices_shutdown
    factory = MockFactory()
    io = GpiozeroIO(pin_factory=factory)
    relay = io.output(RELAY, active_high=True, energised=True)    # a maglock, claimed locked
    sensor = io.input(SENSOR)
    pin = factory.pin(RELAY)
    relay.off()                                                     # unlocked when the process ends
    saved = Device.pin_factory
    Device.pin_factory = factory
    try:
        io.keep_relays()            # what atexit runs first ...
        _devices_shutdown()         # ... then gpiozero's own handler
    finally:
        Device.pin_factory = saved
    assert pin.function == "output" and pin.state is True, (pin.function, pin.state)
    assert sensor._dev.closed       # an input is gpiozero's to close, as before
