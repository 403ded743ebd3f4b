"""Safe at boot on a Raspberry Pi, through gpiozero's MockFactory (CPython):
every level the agent drives on a relay pin, from the moment safe boot
claims it, across boots (a crash, a restart, a safe-mode boot), shows the
unlock level only for the grants the test asked for."""

import json

import pytest
from gpiozero import Device
from gpiozero.pins.mock import MockFactory, MockPin

from agent.config import load_board
from agent.hal import safe_boot
from agent.hal.gpiozero_io import GpiozeroIO
from agent.peripherals.door import Door
from agent.thing import Thing

STRIKE, MAGLOCK = 17, 22   # locked: STRIKE active-low de-energised = high; MAGLOCK energised = high


class WatchedPin(MockPin):
    """A MockPin that keeps every level driven on it while it is an output:
    ("claim", level) when a device claims it, ("write", level) for each
    write after - what a logic analyser on the relay's input would show
    while the agent holds the pin."""

    def __init__(self, factory, info):
        super().__init__(factory, info)
        self.driven = []

    def output_with_state(self, state):
        self.driven.append(("claim", bool(state)))
        super().output_with_state(state)

    def _set_state(self, value):
        if self._function == "output":
            self.driven.append(("write", bool(value)))
        super()._set_state(value)


@pytest.fixture
def factory():
    # gpiozero's default factory, as on a Pi: safe boot claims with it and
    # the adapter (GpiozeroIO() with no factory, as hal.board_io makes it) too.
    f = MockFactory(pin_class=WatchedPin)
    Device.pin_factory = f
    yield f
    _process_ends(f)
    f.close()
    Device.pin_factory = None


def _process_ends(factory):
    """What gpiozero's exit handler does to each device at a process's end
    (a crash, a kill, a restart); the factory (the pins) stays: a new
    process finds the same pins."""
    for refs in list(factory._reservations.values()):
        for ref in refs:
            dev = ref()
            if dev is not None:
                dev.close()
    safe_boot.claimed.clear()


@pytest.fixture
def board_path(tmp_path):
    path = tmp_path / "board.json"
    path.write_text(json.dumps({
        "name": "pi", "chip": "bcm2711", "runtimes": ["cpython"], "hal": "gpiozero",
        "peripherals": [
            {"type": "door", "name": "front", "relay_pin": STRIKE, "relay_active_high": False, "fail": "secure"},
            {"type": "door", "name": "gate", "relay_pin": MAGLOCK, "unlock_energised": False, "fail": "secure"},
        ]}))
    return path


def _boot(board_path, safe=False):
    """One agent process's start: safe boot first, then the adapter and the
    doors as the device makes them."""
    safe_boot.lock_relays(str(board_path))
    io = GpiozeroIO()
    thing = Thing("pi")
    doors = {cfg["name"]: Door(thing, io, cfg) for cfg in load_board(str(board_path))["peripherals"]}
    if safe:
        for door in doors.values():
            door.hold_fail_state()
    return doors


async def _grant(door):
    from agent.hal import ticks_add, ticks_ms
    await door.grant("cloud", duration_ms=100)
    door.poll(ticks_add(ticks_ms(), 200))   # its pulse is over


def _onsets(driven, unlock):
    out, last = 0, None
    for _, level in driven:
        if level == unlock and last != unlock:
            out += 1
        last = level
    return out


async def test_relays_show_their_unlock_level_only_for_grants_across_boots(factory, board_path):
    # The pins exist before anyone claims them; nothing was driven yet.
    pins = {STRIKE: factory.pin(STRIKE), MAGLOCK: factory.pin(MAGLOCK)}
    locked = {STRIKE: True, MAGLOCK: True}
    grants = {STRIKE: 0, MAGLOCK: 0}

    doors = _boot(board_path)                       # a first boot: one grant per door
    await _grant(doors["front"])
    await _grant(doors["gate"])
    grants = {STRIKE: 1, MAGLOCK: 1}
    _process_ends(factory)                          # a crash
    doors = _boot(board_path)
    _process_ends(factory)                          # a watchdog kill
    _boot(board_path, safe=True)                    # a safe-mode boot: fail secure, held locked
    _process_ends(factory)                          # a reboot command
    doors = _boot(board_path)
    await _grant(doors["front"])
    grants[STRIKE] += 1

    for pin, watched in pins.items():
        claims = [level for kind, level in watched.driven if kind == "claim"]
        assert claims == [locked[pin]] * 4, (pin, watched.driven)   # every boot claims it locked
        assert _onsets(watched.driven, not locked[pin]) == grants[pin], (pin, watched.driven)
        assert watched.driven[-1][1] == locked[pin]


def test_a_relay_safe_boot_could_not_claim_is_claimed_by_the_adapter_at_its_level(factory):
    # No safe boot (its board file unreadable): the adapter claims the pin
    # itself, at the level asked for.
    io = GpiozeroIO()
    io.output(STRIKE, active_high=False, energised=False)
    driven = factory.pin(STRIKE).driven
    assert driven[0] == ("claim", True) and {level for _, level in driven} == {True}, driven
