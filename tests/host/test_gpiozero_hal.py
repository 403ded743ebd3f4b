"""GpiozeroIO (Raspberry Pi hal) against gpiozero's MockFactory: CPython only."""

import asyncio
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory

from agent.config import load_board
from agent.hal.gpiozero_io import GpiozeroIO
from agent.peripherals.door import Door
from agent.thing import Thing

ROOT = Path(__file__).resolve().parents[2]
RELAY, SENSOR = 17, 27


def door_cfg(active_high=True):
    return {"type": "door", "name": "front", "relay_pin": RELAY, "relay_active_high": active_high,
            "sensor_pin": SENSOR, "sensor_open_level": 1, "unlock_ms": 3000}


@pytest.fixture
def factory():
    f = MockFactory()
    yield f
    f.close()


@pytest.fixture
def io(factory):
    io = GpiozeroIO(pin_factory=factory)
    yield io
    io.close()


async def until(cond, timeout=1.0):
    """Poll cond() until true; bounded so a broken door fails, not hangs."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not cond():
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


def test_rpi_board_file_loads():
    board = load_board(str(ROOT / "boards" / "rpi.json"))
    assert board["hal"] == "gpiozero" and board["runtimes"] == ["cpython"]
    (door,) = board["peripherals"]
    assert door["type"] == "door"
    assert (door["relay_pin"], door["relay_active_high"]) == (17, True)
    assert (door["sensor_pin"], door["sensor_open_level"], door["unlock_ms"]) == (27, 1, 3000)


@pytest.mark.parametrize("active_high", [True, False])
async def test_unlock_pulses_relay_with_configured_polarity(factory, io, active_high):
    thing = Thing("dev")
    Door(thing, io, door_cfg(active_high))
    relay = factory.pin(RELAY)
    energised = active_high  # pin level that means "relay on"
    assert relay.state == (not energised), "relay must start de-energised"

    await thing.call("unlock", {"duration_ms": 200})
    assert relay.state == energised
    assert thing.get("lock") == "unlocked"

    assert await until(lambda: thing.get("lock") == "locked", 0.35)
    assert relay.state == (not energised)


async def test_sensor_reports_open_and_closed(factory, io):
    thing = Thing("dev")
    events = []
    thing.listen(lambda kind, name, value: events.append(name) if kind == "event" else None)
    door = Door(thing, io, door_cfg())
    sensor = factory.pin(SENSOR)
    sensor.drive_low()
    task = asyncio.create_task(door.run())
    try:
        assert await until(lambda: thing.get("door") == "closed")
        sensor.drive_high()
        assert await until(lambda: thing.get("door") == "open")
        assert "door_opened" in events
        sensor.drive_low()
        assert await until(lambda: thing.get("door") == "closed")
        assert "door_closed" in events
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_pull_up_still_reads_raw_level(factory):
    # With the internal pull-up gpiozero inverts its own value; the hal must not.
    io = GpiozeroIO(pin_factory=factory, sensor_pull_up=True)
    try:
        sensor = io.input(SENSOR)
        assert sensor.value() == 1  # pulled up, switch open
        factory.pin(SENSOR).drive_low()
        assert sensor.value() == 0
    finally:
        io.close()


def test_climate_sensor_is_refused(io):
    with pytest.raises(ValueError, match="climate sensors are not supported on the gpiozero hal"):
        io.climate_sensor({"type": "climate", "name": "lobby", "interval_s": None})
