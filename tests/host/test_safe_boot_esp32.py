"""The agent's first statements lock the relays, before anything that can
fail: an ESP32 agent (MicroPython on the stand-in `machine`, which logs
every pin write of the process) whose start-up fails on a broken site file
has still driven every relay to its locked level, and nothing else."""

import json

from host_tools.paths import BOARDS

MAGLOCK = 14   # energised (1) while locked


async def test_relays_are_locked_even_when_the_start_up_fails(micropython, tmp_path):
    spec = json.loads((BOARDS / "esp32-devkitc-door.json").read_text())
    spec["peripherals"] = [
        {"type": "door", "name": "front", "relay_pin": 26, "sensor_pin": 27},
        {"type": "wiegand", "name": "entry", "d0_pin": 32, "d1_pin": 33, "door": "front"},
        {"type": "door", "name": "gate", "relay_pin": MAGLOCK, "unlock_energised": False, "sensor": "none"}]
    board = tmp_path / "board.json"
    board.write_text(json.dumps(spec))
    site = tmp_path / "site.json"
    site.write_text("{not json")
    pin_log = tmp_path / "pins.log"
    ran = await micropython.run("-m", "agent.main", "--board", board, "--site", site, stubs=True,
                                env={"MACHINE_PIN_LOG": str(pin_log)}, heap_kb=spec["heap_kb"])
    assert ran.code == 2 and "config error" in ran.out, ran.out
    writes = [line.split()[1:] for line in pin_log.read_text().splitlines()]
    assert writes == [["26", "0"], [str(MAGLOCK), "1"]], writes
