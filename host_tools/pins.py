"""What each chip's GPIO pins can do, for `doorlink validate`.

The agent's own checks (agent/config.py) know no chip: a pin is a number
there. Here each chip has a table of the pins it has and of those a door
must not use, from the vendors' datasheets: a relay on a pin that the boot
ROM or the firmware drives opens the lock at every reset, which no test
on a desktop shows and a building notices.

`findings(board)` takes a board as agent.config.load_board returns it
(every default filled in) and returns what is refused and what is only
worth a warning, each naming the board field.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

# How a board field uses its pin.
RELAY, OUTPUT, INPUT, IO = "relay", "output", "input", "io"
# Field names that are inputs; any other "pin" or "*_pin" field is taken as
# needing an output too (a DHT22's data line is driven for its start
# pulse): refusing an input-only pin for a field not known here is the
# safe mistake.
INPUT_FIELDS = ("sensor_pin", "rex_pin", "tamper_pin", "d0_pin", "d1_pin")


@dataclass(frozen=True)
class Use:
    field: str          # e.g. "peripherals[0].relay_pin"
    pin: int
    kind: str           # RELAY, OUTPUT, INPUT or IO
    pull: str | None    # "up" or "down": the wiring needs one (a switch, an open-collector line)
    locked_level: int | None = None   # a relay's pin level while the door is locked


@dataclass(frozen=True)
class Finding:
    field: str
    text: str
    refused: bool


def _pull(kind: str, field: str, p: dict) -> str | None:
    """The pull a switch input needs: a contact to ground reads through a
    pull-up (docs/door-controller.md, section 3)."""
    if kind != INPUT:
        return None
    if field == "rex_pin":
        return "up" if p["rex_level"] == 0 else "down"
    if field == "tamper_pin":
        return "up" if p["tamper_level"] == 1 else "down"
    if field == "sensor_pin" and p["sensor"] == "none":
        return None
    return "up"   # door contacts and Wiegand D0/D1 idle high


def locked_level(p: dict) -> int:
    """A door relay's pin level while locked: the level safe boot drives it
    to (docs/door-controller.md, section 2)."""
    from agent.hal.safe_boot import locked_energised, relay_level
    return relay_level(p, locked_energised(p))


def uses(board: dict) -> list[Use]:
    """Every pin a board file names: each peripheral's "pin" and "*_pin" fields."""
    out = []
    for i, p in enumerate(board["peripherals"]):
        for key in sorted(p):
            value = p[key]
            if not (key == "pin" or key.endswith("_pin")) or not isinstance(value, int) or isinstance(value, bool):
                continue
            field = f"peripherals[{i}].{key}"
            if key == "relay_pin":
                out.append(Use(field, value, RELAY, None, locked_level(p)))
                continue
            kind = INPUT if key in INPUT_FIELDS else IO
            out.append(Use(field, value, kind, _pull(kind, key, p)))
    return out


# -- ESP32 (ESP32-WROOM/WROVER modules; Espressif's ESP32 datasheet) --------
ESP32_PINS = frozenset(range(40)) - {20, 24, 28, 29, 30, 31}
ESP32_FLASH = range(6, 12)
ESP32_INPUT_ONLY = range(34, 40)
ESP32_CONSOLE = {1: "TX", 3: "RX"}
# What the boot ROM reads from each strapping pin, and so what a switch or
# a relay module on it can do to a reset.
ESP32_STRAPPING = {
    0: "held low at reset it starts the serial bootloader instead of the agent",
    2: "held high at reset it stops the serial bootloader from flashing the board",
    5: "its level at reset sets the SDIO slave timing",
    12: "held high at reset it selects 1.8 V flash and the board does not boot",
    15: "held low at reset it silences the boot log",
}
# Not a strapping pin, yet JTAG's TMS puts out a signal during boot.
ESP32_BOOT_SIGNAL = {14: "it puts out a signal during boot (JTAG TMS)"}
# WROVER modules wire these to their PSRAM; WROOM modules leave them free.
# A board file names the chip, not the module: a warning.
ESP32_PSRAM = (16, 17)
ESP32_FREE = "GPIO 4, 13, 18, 19, 21-23, 25-27, 32 or 33"
# MicroPython's default pins per UART; "uartN:TX:RX" names others.
ESP32_UART_PINS = {0: (1, 3), 1: (10, 9), 2: (17, 16)}


def _esp32(use: Use, board: dict) -> list[Finding]:
    pin, f = use.pin, use.field
    if pin not in ESP32_PINS:
        return [Finding(f, f"GPIO {pin} does not exist on the ESP32 (it has GPIO 0-19, 21-23, 25-27, 32-39)", True)]
    if pin in ESP32_FLASH:
        return [Finding(f, f"GPIO {pin} is wired to the module's SPI flash (GPIO 6-11): using it stops the board; "
                        f"use {ESP32_FREE}", True)]
    if pin in ESP32_CONSOLE:
        return [Finding(f, f"GPIO {pin} is the console UART's {ESP32_CONSOLE[pin]} (GPIO 1 and 3): the REPL, "
                        f"mpremote and the boot log run over it; use {ESP32_FREE}", True)]
    if pin in ESP32_INPUT_ONLY:
        if use.kind != INPUT:
            what = "a relay" if use.kind == RELAY else "an output"
            return [Finding(f, f"GPIO {pin} is input-only (GPIO 34-39) and cannot drive {what}; use {ESP32_FREE}",
                            True)]
        if use.pull:
            to = "3.3 V" if use.pull == "up" else "GND"
            return [Finding(f, f"GPIO {pin} (34-39) has no internal pull resistor: fit an external pull-{use.pull} "
                            f"(10 kOhm to {to}), or the input floats", False)]
        return []
    if pin in ESP32_STRAPPING:
        why = ESP32_STRAPPING[pin]
        if use.kind == RELAY:
            return [Finding(f, f"GPIO {pin} is a strapping pin: it toggles at boot, so the relay clicks (and the "
                            f"lock opens) at every reset, and {why}; use {ESP32_FREE}", True)]
        return [Finding(f, f"GPIO {pin} is a strapping pin: {why}; make sure what is wired to it leaves it at its "
                        f"default level at reset, or use {ESP32_FREE}", False)]
    if pin in ESP32_BOOT_SIGNAL and use.kind == RELAY:
        return [Finding(f, f"GPIO {pin}: {ESP32_BOOT_SIGNAL[pin]}: the relay clicks (and the lock opens) at every "
                        f"reset; use {ESP32_FREE}", True)]
    if pin in ESP32_PSRAM:
        return [Finding(f, f"GPIO {pin} is wired to the PSRAM on WROVER modules (GPIO 16, 17): fine on a WROOM, "
                        f"a crash on a WROVER; use {ESP32_FREE} to fit both", False)]
    return []


# The port grammar agent/hal/serial_uart.py reads (uart_name); that module
# imports `machine` and so cannot be imported on a host.
ESP32_UART_PORT = re.compile(r"uart(\d+)(?::(\d+):(\d+))?")


def _esp32_claims(board: dict) -> tuple[list[Use], list[Finding]]:
    """The fingerprint reader's UART pins (from its port: "uart2" or
    "uartN:TX:RX") and a DHT22 without its data pin."""
    claimed, found = [], []
    for i, p in enumerate(board["peripherals"]):
        if p["type"] == "climate" and p.get("pin") is None:
            found.append(Finding(f"peripherals[{i}].pin", "is missing (the GPIO of the DHT22's data line)", True))
        if p["type"] != "fingerprint":
            continue
        field = f"peripherals[{i}].port"
        m = ESP32_UART_PORT.fullmatch(p["port"])
        if m is None or (m[2] is None and int(m[1]) not in ESP32_UART_PINS):
            found.append(Finding(field, f"{p['port']!r} is no ESP32 UART: name one as uart2 (TX 17, RX 16) or "
                                 "uartN:TX:RX (GPIO numbers)", True))
            continue
        tx, rx = (int(m[2]), int(m[3])) if m[2] is not None else ESP32_UART_PINS[int(m[1])]
        claimed += [Use(field, tx, OUTPUT, None), Use(field, rx, INPUT, None)]
    return claimed, found


# -- Raspberry Pi (BCM2835 / BCM2837 / BCM2711 peripherals datasheets) -------
PI_PINS = range(28)
# Until the agent claims a pin, the chip's reset pulls hold it: GPIO 0-8
# high, 9-27 low. A relay whose locked level is the other one is at its
# unlock level from power-on until the agent starts, some 20 s on a Pi.
PI_PULLED_UP_AT_BOOT = range(9)
PI_HAT_EEPROM = (0, 1)
PI_UART = (14, 15)
PI_I2C1 = (2, 3)
PI_SERIAL_PORTS = ("/dev/serial0", "/dev/ttyAMA0", "/dev/ttyS0")


def _pi_claims(board: dict) -> tuple[list[Use], list[Finding]]:
    """Pins a Pi's peripherals take without naming them: the fingerprint
    reader's UART (GPIO 14 TXD, 15 RXD), the BME280's I2C bus 1 (GPIO 2
    SDA, 3 SCL)."""
    claimed = []
    for i, p in enumerate(board["peripherals"]):
        if p["type"] == "fingerprint" and p.get("port") in PI_SERIAL_PORTS:
            field = f"peripherals[{i}].port"
            claimed += [Use(field, PI_UART[0], OUTPUT, None), Use(field, PI_UART[1], INPUT, None)]
        elif p["type"] == "climate" and p.get("i2c_bus", 1) == 1:
            field = f"peripherals[{i}].i2c_bus"
            claimed += [Use(field, PI_I2C1[0], IO, None), Use(field, PI_I2C1[1], IO, None)]
    return claimed, []


def _pi(use: Use, board: dict) -> list[Finding]:
    pin, f = use.pin, use.field
    if f.endswith((".port", ".i2c_bus")):
        return []   # the Pi's own UART or I2C pins, named by the peripheral
    if pin not in PI_PINS:
        return [Finding(f, f"GPIO {pin} does not exist on a Raspberry Pi's header (it has GPIO 0-27)", True)]
    if pin in PI_HAT_EEPROM:
        return [Finding(f, f"GPIO {pin} is the HAT EEPROM's I2C (ID_SD/ID_SC, GPIO 0-1): the firmware probes it at "
                        "boot; use GPIO 4-13 or 16-27", True)]
    out = []
    if pin in PI_UART:
        out.append(Finding(f, f"GPIO {pin} is the serial console's UART (GPIO 14 TXD, 15 RXD), which the "
                           "fingerprint reader uses: disable the serial console (raspi-config) or use another pin",
                           False))
    if use.kind == RELAY:
        boot = "up" if pin in PI_PULLED_UP_AT_BOOT else "down"
        want = "up" if use.locked_level else "down"
        if boot != want:
            pins = "4-8" if use.locked_level else "9-13 or 16-27"
            out.append(Finding(
                f, f"GPIO {pin} is pulled {boot} from power-on until the agent starts, and this relay is locked at "
                f"a {'high' if use.locked_level else 'low'} level: its input sits at the unlock level during every "
                f"boot, and the lock can open. Use a pin pulled {want} at boot (GPIO {pins}), or fit an external "
                f"pull-{want} resistor (4.7 kOhm) on GPIO {pin}", False))
    return out


def _any(use: Use, board: dict) -> list[Finding]:
    return []


@dataclass(frozen=True)
class Chip:
    what: str
    hals: tuple[str, ...]
    runtimes: tuple[str, ...]
    check: Callable[[Use, dict], list[Finding]]
    claims: Callable[[dict], tuple[list[Use], list[Finding]]]


_PI = Chip("a Raspberry Pi", ("gpiozero",), ("cpython",), _pi, _pi_claims)
CHIPS = {
    "esp32": Chip("an ESP32", ("esp32",), ("micropython",), _esp32, _esp32_claims),
    "bcm2711": _PI,   # Pi 4, Pi 400, CM4
    "bcm2837": _PI,   # Pi 3, Zero 2 W: the BCM2835's GPIO block
    "bcm2835": _PI,   # Pi 1, Zero
    "host": Chip("a desktop (emulated pins)", ("emulated",), ("micropython", "cpython"), _any,
                 lambda board: ([], [])),
}


def findings(board: dict) -> list[Finding]:
    """Refusals and warnings for a checked board, in the file's order."""
    chip = CHIPS.get(board["chip"])
    if chip is None:
        return [Finding("chip", f"has no pin table for {board['chip']!r} (known: {', '.join(CHIPS)})", True)]
    out = []
    if board["hal"] not in chip.hals:
        out.append(Finding("hal", f"{board['hal']!r} does not drive {chip.what}'s pins (use "
                           f"{' or '.join(chip.hals)})", True))
    for runtime in board["runtimes"]:
        if runtime not in chip.runtimes:
            out.append(Finding("runtimes", f"{chip.what} does not run {runtime} (it runs "
                               f"{' or '.join(chip.runtimes)})", True))
    claims, found = chip.claims(board)
    out += found
    claimed = {}
    for use in claims + uses(board):
        first = claimed.setdefault(use.pin, use.field)
        if first != use.field:
            out.append(Finding(use.field, f"GPIO {use.pin} is already used by {first}", True))
        out += chip.check(use, board)
    return out
