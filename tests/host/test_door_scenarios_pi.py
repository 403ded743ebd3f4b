"""The door scenarios of tests/door_scenarios.py on the Raspberry Pi hal
(agent/hal/gpiozero_io.py) over gpiozero's own MockFactory: the relays'
levels are the mock pins' recorded states, contacts and Wiegand pulses are
driven on the pins (the D0/D1 callbacks run as lgpio's would). A fresh
board per scenario (cheap here), so each cell of the table is a test of
its own. CPython only."""

import json

import door_scenarios as ds
import pytest
from gpiozero.pins.mock import MockFactory

from agent import hal, log
from agent.hal.gpiozero_io import GpiozeroIO
from host_tools.emulator import wiegand_card, wiegand_key


class PiWorld(ds.InProcessWorld):
    clock = hal   # gpiozero calls the port back on this thread, stamped with hal.ticks_ms()

    def __init__(self, factory, board_path):
        self.factory = factory
        self.io = GpiozeroIO(pin_factory=factory)
        super().__init__(self.io, str(board_path))

    def _set(self, pin, level):
        if level:
            self.factory.pin(pin).drive_high()
        else:
            self.factory.pin(pin).drive_low()

    def _bits(self, d0, d1, bits):
        for b in bits:
            p = self.factory.pin(d1 if b == "1" else d0)
            p.drive_low()
            p.drive_high()

    def _levels(self, pin):
        # Its first state is the pin's before the claim: a claim at that
        # same level records nothing more (the relay never moved). The last
        # is the pin's state now.
        return [int(s.state) for s in self.factory.pin(pin).states]

    def wire_card(self, number, nbits):
        return wiegand_card(number, nbits)

    def wire_key(self, key):
        return wiegand_key(key)


@pytest.fixture
async def world(tmp_path):
    log.set_level("error")
    factory = MockFactory()
    path = tmp_path / "board.json"
    path.write_text(json.dumps(ds.board_spec("gpiozero", "bcm2711", ["cpython"])))
    w = PiWorld(factory, path)
    w.start()
    try:
        yield w
    finally:
        await w.stop()
        w.io.close()
        factory.close()
        log.set_level("info")


@pytest.mark.parametrize("name", ds.NAMES)
async def test_door_scenario_on_gpiozero_mock_pins(world, name):
    await ds.run(world, [name])
