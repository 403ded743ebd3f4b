# The door scenarios of tests/door_scenarios.py on the ESP32 hal
# (agent/hal/esp32.py) under MicroPython, against the stand-ins of
# tests/mp/stubs: the relays' levels are what `machine` recorded on the
# wire, the contacts are driven as the outside world would, and the Wiegand
# bits arrive as falling edges whose handlers run as hard IRQs (with the
# heap locked). One board for the whole table, as a board runs.
import gc
import json
import sys

import machine

STUBS = True
PRECOMPILED = True  # the agent's .mpy, as the board runs it: its budget is for that, not for compiling
HEAP_KB = 384       # the ESP32 door board's budget (boards/esp32-devkitc-door.json)
TIMEOUT_S = 90


def _scenarios():
    if "tests" not in sys.path:
        sys.path.append("tests")   # door_scenarios.py is shared with the gpiozero and virtual-board worlds
    import door_scenarios
    return door_scenarios


def _world(ds, folder, wire):
    import agent.hal.esp32 as hal_esp32
    from agent.hal.esp32 import Esp32IO

    class Esp32World(ds.InProcessWorld):
        clock = hal_esp32   # its IRQ handlers stamp bits with its ticks_ms(), inside machine.drive()

        def _set(self, pin, level):
            machine.drive(pin, level)

        def _bits(self, d0, d1, bits):
            for b in bits:
                pin = d1 if b == "1" else d0
                machine.drive(pin, 0)
                machine.drive(pin, 1)

        def _levels(self, pin):
            return [level for _, n, level in machine.writes if n == pin]

        def wire_card(self, number, nbits):
            return wire["card %d %d" % (number, nbits)]

        def wire_key(self, key):
            return wire["key " + key]

    path = folder + "/board.json"
    with open(path, "w") as f:
        json.dump(ds.board_spec("esp32", "esp32", ["micropython"]), f)
    return Esp32World(Esp32IO(), path)


async def test_every_door_scenario_on_the_esp32_stand_ins(tmp_path, wiegand_wire):
    from agent import log
    log.set_level("error")
    ds = _scenarios()
    w = _world(ds, tmp_path, wiegand_wire)
    w.start()
    try:
        await ds.run(w)
    finally:
        await w.stop()
    gc.collect()
    return ("door scenarios on the ESP32 stand-ins: %d scenarios on one board (3 doors, 2 readers, %d users); "
            "heap in use after them %d bytes (the agent from .mpy)"
            % (len(ds.SCENARIOS), len(ds.USERS), gc.mem_alloc()))
