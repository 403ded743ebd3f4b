# The shipped board files load on the runtime that reads them (an ESP32's
# agent reads its board file with MicroPython), and a GPIO named twice is
# refused by the agent itself on any chip, naming both fields.
from agent import config
from agent.errors import ConfigError

from support import raises, tmpdir, write_json

SHIPPED = ("esp32-devkitc-door", "esp32-attendance", "rpi4-door", "rpi-attendance", "emulated",
           "emulated-attendance")
BOARD = {"name": "t", "chip": "esp32", "runtimes": ["micropython"], "hal": "esp32", "heap_kb": 100}


def test_every_shipped_board_loads():
    kinds = {}
    for name in SHIPPED:
        board = config.load_board("boards/%s.json" % name)
        assert board["name"] == name
        kinds[name] = sorted(p["type"] for p in board["peripherals"])
    assert kinds["esp32-devkitc-door"] == kinds["rpi4-door"] == ["climate", "door", "wiegand"]
    assert kinds["esp32-attendance"] == kinds["rpi-attendance"] == ["climate", "door", "fingerprint"]


def test_a_pin_used_twice_names_both_fields():
    d = tmpdir()
    cases = [
        ([{"type": "door", "relay_pin": 26, "sensor_pin": 26}], "peripherals[0].sensor_pin",
         "peripherals[0].relay_pin"),
        ([{"type": "door", "relay_pin": 26, "rex_pin": 25}, {"type": "wiegand", "d0_pin": 32, "d1_pin": 25}],
         "peripherals[1].d1_pin", "peripherals[0].rex_pin"),
        ([{"type": "door", "relay_pin": 4}, {"type": "climate", "pin": 4}], "peripherals[1].pin",
         "peripherals[0].relay_pin"),
        ([{"type": "door", "name": "a", "relay_pin": 26}, {"type": "door", "name": "b", "relay_pin": 26}],
         "peripherals[1].relay_pin", "peripherals[0].relay_pin"),
    ]
    for i, (periph, field, first) in enumerate(cases):
        e = raises(ConfigError, config.load_board, write_json(d, "b%d.json" % i, dict(BOARD, peripherals=periph)))
        assert e.field == field, (periph, str(e))
        assert "names GPIO" in e.problem and first + " already uses" in e.problem, str(e)


def test_optional_pins_left_out_are_not_a_clash():
    board = dict(BOARD, peripherals=[{"type": "door", "name": "a", "relay_pin": 26},
                                     {"type": "door", "name": "b", "relay_pin": 27}, {"type": "climate", "pin": 4}])
    doors = config.load_board(write_json(tmpdir(), "b.json", board))["peripherals"]
    assert doors[0]["sensor_pin"] is None and doors[1]["rex_pin"] is None
