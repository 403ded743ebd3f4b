"""`doorlink validate BOARD.json [SITE.json]`: each pin rule on a small board
file, as a technician meets it - the file and the field named, exit code 2
for a refusal, 0 with warnings printed - and every shipped board valid."""

import json
import subprocess
import sys

import pytest

from host_tools.paths import BOARDS
from host_tools.validate import check

DOORLINK = [sys.executable, "-m", "host_tools.cli"]
SHIPPED = ("esp32-devkitc-door", "esp32-attendance", "rpi4-door", "rpi-attendance", "emulated",
           "emulated-attendance", "virtual-esp32")

ESP32 = {"name": "t", "chip": "esp32", "runtimes": ["micropython"], "hal": "esp32", "heap_kb": 100}
PI = {"name": "t", "chip": "bcm2711", "runtimes": ["cpython"], "hal": "gpiozero"}


def _door(**kw):
    return dict({"type": "door", "name": "front", "relay_pin": 26}, **kw)


def _file(tmp_path, base, *peripherals, name="x.json", **patch):
    path = tmp_path / name
    path.write_text(json.dumps(dict(base, peripherals=list(peripherals), **patch)))
    return str(path)


def _refused(path):
    refused, _ = check(path)
    assert refused, "nothing refused in " + open(path).read()
    return refused


def _warned(path):
    refused, warned = check(path)
    assert not refused, refused
    return warned


def _doorlink(*args, cwd=None):
    return subprocess.run(DOORLINK + ["validate", *args], capture_output=True, text=True, timeout=60, cwd=cwd)


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_board_validates(name):
    assert (BOARDS / (name + ".json")).is_file()
    res = _doorlink(name)
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.strip().splitlines()[-1] == str(BOARDS / (name + ".json")) + ": valid"
    assert "warning" not in res.stdout


def test_no_other_board_is_shipped():
    # A board file left out of SHIPPED would go unvalidated.
    assert sorted(p.stem for p in BOARDS.glob("*.json")) == sorted(SHIPPED)


def test_a_refusal_names_file_and_field_and_exits_2(tmp_path):
    path = _file(tmp_path, ESP32, _door(relay_pin=12), name="boards-x.json")
    res = _doorlink("boards-x.json", cwd=tmp_path)
    assert res.returncode == 2, res.stdout + res.stderr
    assert res.stdout.startswith("refused: boards-x.json: peripherals[0].relay_pin: GPIO 12 is a strapping pin")
    assert "Traceback" not in res.stdout + res.stderr
    assert check(path)[0] == [line[len("refused: "):].replace("boards-x.json", path)
                              for line in res.stdout.splitlines() if line.startswith("refused: ")]


def test_warnings_are_printed_and_exit_0(tmp_path):
    _file(tmp_path, ESP32, _door(rex_pin=36))
    res = _doorlink(str(tmp_path / "x.json"))
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.startswith("warning: %s: peripherals[0].rex_pin: GPIO 36 (34-39) has no internal pull resistor"
                                 % (tmp_path / "x.json"))
    assert res.stdout.strip().endswith("valid (1 warning(s))")


# -- the agent's own checks come first ---------------------------------------
def test_a_missing_field_is_named(tmp_path):
    (line,) = _refused(_file(tmp_path, ESP32, {"type": "door", "name": "front"}))
    assert line == str(tmp_path / "x.json") + ": peripherals[0].relay_pin: is missing (GPIO driving the lock relay)"
    (line,) = _refused(_file(tmp_path, ESP32, _door(), {"type": "wiegand", "d0_pin": 32}))
    assert ": peripherals[1].d1_pin: is missing" in line


def test_a_pin_used_twice_is_refused_on_any_chip(tmp_path):
    for base in (ESP32, PI):
        (line,) = _refused(_file(tmp_path, base, _door(relay_pin=26, sensor_pin=27),
                                 {"type": "wiegand", "d0_pin": 32, "d1_pin": 27}))
        assert line.endswith(": peripherals[1].d1_pin: names GPIO 27, which peripherals[0].sensor_pin already uses")


def test_a_site_file_is_checked_too(tmp_path):
    board = _file(tmp_path, ESP32, _door())
    site = tmp_path / "site.json"
    site.write_text(json.dumps({"server": "ws://127.0.0.1:9/ws", "device_id": "d1", "token": "t"}))
    assert check(board, str(site)) == ([], [])
    site.write_text(json.dumps({"server": "ws://127.0.0.1:9/ws", "device_id": "../d1", "token": "t"}))
    (line,) = check(board, str(site))[0]
    assert line.startswith(str(site) + ": device_id: ")
    res = _doorlink(board, str(site))
    assert res.returncode == 2 and "device_id" in res.stdout


def test_a_chip_without_a_pin_table_and_a_hal_for_another_chip(tmp_path):
    (line,) = _refused(_file(tmp_path, dict(ESP32, chip="esp8266"), _door()))
    assert ": chip: has no pin table for 'esp8266' (known: esp32, bcm2711" in line
    hal, runtime = _refused(_file(tmp_path, dict(PI, hal="esp32", runtimes=["micropython"], heap_kb=100), _door(
        relay_pin=17)))
    assert ": hal: 'esp32' does not drive a Raspberry Pi's pins (use gpiozero)" in hal
    assert ": runtimes: a Raspberry Pi does not run micropython (it runs cpython)" in runtime
    (line,) = _refused(_file(tmp_path, dict(PI, runtimes=["micropython", "cpython"], heap_kb=100),
                             _door(relay_pin=17)))
    assert ": runtimes: a Raspberry Pi does not run micropython (it runs cpython)" in line


# -- ESP32 ---------------------------------------------------------------------
@pytest.mark.parametrize("pin", [20, 24, 28, 31, 40, 63])
def test_esp32_pins_that_do_not_exist(tmp_path, pin):
    (line,) = _refused(_file(tmp_path, ESP32, _door(sensor_pin=pin)))
    assert ": peripherals[0].sensor_pin: GPIO %d does not exist on the ESP32" % pin in line


@pytest.mark.parametrize("pin", range(6, 12))
def test_esp32_flash_pins_are_refused_for_any_use(tmp_path, pin):
    (line,) = _refused(_file(tmp_path, ESP32, _door(rex_pin=pin)))
    assert ": peripherals[0].rex_pin: GPIO %d is wired to the module's SPI flash" % pin in line


@pytest.mark.parametrize("pin", [1, 3])
def test_esp32_console_uart_is_refused(tmp_path, pin):
    (line,) = _refused(_file(tmp_path, ESP32, _door(tamper_pin=pin)))
    assert ": peripherals[0].tamper_pin: GPIO %d is the console UART's" % pin in line


@pytest.mark.parametrize("pin", range(34, 40))
def test_esp32_input_only_pins_drive_nothing(tmp_path, pin):
    (line,) = _refused(_file(tmp_path, ESP32, _door(relay_pin=pin)))
    assert ": peripherals[0].relay_pin: GPIO %d is input-only (GPIO 34-39) and cannot drive a relay" % pin in line
    # A DHT22's data line is driven too (the start pulse).
    (line,) = _refused(_file(tmp_path, ESP32, _door(), {"type": "climate", "pin": pin}))
    assert ": peripherals[1].pin: GPIO %d is input-only (GPIO 34-39) and cannot drive an output" % pin in line


def test_esp32_input_only_pins_as_inputs_need_an_external_pull(tmp_path):
    warned = _warned(_file(tmp_path, ESP32, _door(sensor_pin=34, rex_pin=35, rex_level=1),
                           {"type": "wiegand", "d0_pin": 36, "d1_pin": 39}))
    assert [w.split(": ", 2)[1] for w in warned] == ["peripherals[0].rex_pin", "peripherals[0].sensor_pin",
                                                      "peripherals[1].d0_pin", "peripherals[1].d1_pin"]
    assert "external pull-down (10 kOhm to GND)" in warned[0]      # a button to 3.3 V
    assert "external pull-up (10 kOhm to 3.3 V)" in warned[1]
    # A door without a contact needs no pull: nothing to say.
    assert _warned(_file(tmp_path, ESP32, _door(sensor_pin=34, sensor="none"))) == []


@pytest.mark.parametrize("pin", [0, 2, 5, 12, 15])
def test_esp32_strapping_pins_refused_for_a_relay_warned_otherwise(tmp_path, pin):
    (line,) = _refused(_file(tmp_path, ESP32, _door(relay_pin=pin)))
    assert ": peripherals[0].relay_pin: GPIO %d is a strapping pin: it toggles at boot" % pin in line
    (line,) = _warned(_file(tmp_path, ESP32, _door(rex_pin=pin)))
    assert ": peripherals[0].rex_pin: GPIO %d is a strapping pin: " % pin in line


def test_esp32_gpio14_signals_at_boot(tmp_path):
    (line,) = _refused(_file(tmp_path, ESP32, _door(relay_pin=14)))
    assert "GPIO 14: it puts out a signal during boot" in line
    assert _warned(_file(tmp_path, ESP32, _door(sensor_pin=14))) == []


@pytest.mark.parametrize("pin", [16, 17])
def test_esp32_psram_pins_warned(tmp_path, pin):
    (line,) = _warned(_file(tmp_path, ESP32, _door(sensor_pin=pin)))
    assert ": peripherals[0].sensor_pin: GPIO %d is wired to the PSRAM on WROVER modules" % pin in line


def test_esp32_fingerprint_uart_pins_are_taken(tmp_path):
    reader = {"type": "fingerprint", "port": "uart2"}
    (line,) = _refused(_file(tmp_path, ESP32, reader, _door(relay_pin=17)))
    assert line.endswith(": peripherals[1].relay_pin: GPIO 17 is already used by peripherals[0].port")
    reader = {"type": "fingerprint", "port": "uart1:21:22"}
    (line,) = _refused(_file(tmp_path, ESP32, reader, _door(sensor_pin=22)))
    assert line.endswith(": peripherals[1].sensor_pin: GPIO 22 is already used by peripherals[0].port")
    # UART1's own default pins are the flash's.
    lines = _refused(_file(tmp_path, ESP32, dict(reader, port="uart1"), _door()))
    assert ": peripherals[0].port: GPIO 10 is wired to the module's SPI flash" in lines[0]
    for port in ("/dev/serial0", "uart2:17", "uart7", "uart2:a:b"):
        (line,) = _refused(_file(tmp_path, ESP32, dict(reader, port=port), _door()))
        assert ": peripherals[0].port: %r is no ESP32 UART" % port in line


def test_esp32_dht22_needs_its_pin(tmp_path):
    (line,) = _refused(_file(tmp_path, ESP32, _door(), {"type": "climate", "name": "lobby"}))
    assert line.endswith(": peripherals[1].pin: is missing (the GPIO of the DHT22's data line)")


# -- Raspberry Pi -----------------------------------------------------------------
@pytest.mark.parametrize("pin", [28, 40])
def test_pi_pins_that_do_not_exist(tmp_path, pin):
    (line,) = _refused(_file(tmp_path, PI, _door(relay_pin=17, sensor_pin=pin)))
    assert ": peripherals[0].sensor_pin: GPIO %d does not exist on a Raspberry Pi's header" % pin in line


@pytest.mark.parametrize("pin", [0, 1])
def test_pi_hat_eeprom_pins_are_refused(tmp_path, pin):
    (line,) = _refused(_file(tmp_path, PI, _door(relay_pin=17, rex_pin=pin)))
    assert ": peripherals[0].rex_pin: GPIO %d is the HAT EEPROM's I2C" % pin in line


def test_pi_uart_is_the_fingerprint_readers(tmp_path):
    (line,) = _warned(_file(tmp_path, PI, _door(relay_pin=17, rex_pin=14)))
    assert ": peripherals[0].rex_pin: GPIO 14 is the serial console's UART" in line
    reader = {"type": "fingerprint", "port": "/dev/serial0"}
    (line,) = _refused(_file(tmp_path, PI, reader, _door(relay_pin=17, sensor_pin=15)))
    assert line.endswith(": peripherals[1].sensor_pin: GPIO 15 is already used by peripherals[0].port")


def test_pi_bme280_takes_i2c1(tmp_path):
    (line,) = _refused(_file(tmp_path, PI, {"type": "climate"}, _door(relay_pin=17, rex_pin=3)))
    assert line.endswith(": peripherals[1].rex_pin: GPIO 3 is already used by peripherals[0].i2c_bus")
    assert _warned(_file(tmp_path, PI, {"type": "climate", "i2c_bus": 3}, _door(relay_pin=17, rex_pin=3))) == []


@pytest.mark.parametrize("pin, active_high, unlock_energised, boot_open", [
    (17, True, True, False),    # pulled down at boot, locked low: fine
    (4, True, True, True),      # pulled up at boot: the strike is energised until the agent starts
    (17, False, True, True),    # an active-low relay module locked high, pulled down at boot
    (4, False, True, False),
    (17, True, False, True),    # a maglock (locked energised) on a pin pulled down: released at boot
    (6, True, False, False),
])
def test_pi_relay_against_the_boot_pulls(tmp_path, pin, active_high, unlock_energised, boot_open):
    warned = _warned(_file(tmp_path, PI, _door(relay_pin=pin, relay_active_high=active_high,
                                               unlock_energised=unlock_energised)))
    if not boot_open:
        assert warned == []
        return
    (line,) = warned
    assert ": peripherals[0].relay_pin: GPIO %d is pulled " % pin in line
    assert "its input sits at the unlock level during every boot, and the lock can open" in line
    assert "or fit an external pull-" in line and "on GPIO %d" % pin in line


def test_a_desktop_board_takes_any_pin(tmp_path):
    host = {"name": "t", "chip": "host", "runtimes": ["cpython"], "hal": "emulated",
            "emulator": {"host": "127.0.0.1", "port": 1}}
    assert _warned(_file(tmp_path, host, _door(relay_pin=12, sensor_pin=6, rex_pin=63))) == []
