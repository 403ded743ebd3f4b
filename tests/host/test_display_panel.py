"""The display's SSD1306 panel on a Raspberry Pi (the gpiozero hal): the
frame buffer goes out as smbus2 I2C_RDWR write messages, here to a fake
bus whose device at each address is the SSD1306 model of
tests/ssd1306_model.py (shared with the ESP32 test, tests/mp/test_ssd1306.py),
so the asserts are on the GDDRAM the panel lights. A missing /dev/i2c-N is
the real smbus2 failing to open it. CPython only, as the Pi's hal."""

import smbus2
from gpiozero.pins.mock import MockFactory
from ssd1306_model import Ssd1306Model

from agent import config, log
from agent.errors import ConfigError
from agent.hal import gpiozero_io
from agent.hal.gpiozero_io import GpiozeroIO
from agent.peripherals import display as display_mod
from agent.peripherals.display import Display
from agent.thing import Thing

EREMOTEIO = 121   # what i2c-dev answers when nothing acknowledges the address


class FakeBus:
    """smbus2.SMBus as i2c-dev behaves: each write message is one
    transaction to the device at its address, or EREMOTEIO without one."""

    def __init__(self, devices):
        self.devices = devices
        self.closed = False

    def i2c_rdwr(self, *msgs):
        assert not self.closed, "a closed bus was written to"
        for msg in msgs:
            assert msg.flags == 0, "only writes go to a display panel"
            dev = self.devices.get(msg.addr)
            if dev is None:
                raise OSError(EREMOTEIO, "Remote I/O error")
            dev.write(bytes(msg))

    def close(self):
        self.closed = True


def _display(monkeypatch, devices, **fields):
    opened = []

    def open_bus(number):
        assert number == fields.get("i2c_bus", 1)
        opened.append(FakeBus(devices))
        return opened[-1]

    monkeypatch.setattr(gpiozero_io, "_open_bus", open_bus)
    log.counters.clear()
    log.ring.clear()
    thing = Thing("gate-7")
    thing.prop("online", True)
    thing.prop("front.lock", "locked")
    thing.prop("front.door", "closed")
    cfg = config.peripheral("display", dict({"panel": "ssd1306"}, **fields))
    io = GpiozeroIO(pin_factory=MockFactory())
    return thing, Display(thing, cfg, "front", [], io), opened


def _errors():
    return [line for line in log.ring.last(50) if "ERROR" in line]


def test_the_pi_panel_lights_exactly_the_frame_buffer(monkeypatch):
    for rows in (64, 32):
        panel = Ssd1306Model()
        thing, display, _ = _display(monkeypatch, {0x3D: panel}, height=rows, i2c_address=0x3D)
        assert panel.on and panel.charge_pump and panel.rows() == rows
        thing.update("front.lock", "unlocked")
        assert display.refresh() and any(display.buf)
        assert panel.shows() == bytes(display.buf)
        assert max(panel.transactions) <= 33
        assert _errors() == []


def test_a_pi_without_i2c_enabled_says_which_bus_and_goes_on(monkeypatch):
    # No fake: the real smbus2 opening a /dev/i2c-N that is not there.
    monkeypatch.setattr(gpiozero_io, "_open_bus", lambda n: smbus2.SMBus(n))
    log.ring.clear()
    log.counters.clear()
    thing = Thing("gate-7")
    thing.prop("online", True)
    cfg = config.peripheral("display", {"panel": "ssd1306", "i2c_bus": 250})
    display = Display(thing, cfg, None, [], GpiozeroIO(pin_factory=MockFactory()))
    assert display.refresh() and any(display.buf)
    errors = _errors()
    assert len(errors) == 1 and "/dev/i2c-250" in errors[0] and "0x3C" in errors[0], errors
    assert log.counters["display_errors"] == 1


def test_a_pi_panel_at_the_other_address_is_one_error_and_the_bus_is_reopened(monkeypatch):
    devices = {}
    thing, display, opened = _display(monkeypatch, devices)
    errors = _errors()
    assert len(errors) == 1 and "0x3C" in errors[0] and "SCL GPIO3, SDA GPIO2" in errors[0], errors
    assert "Remote I/O error" in errors[0]
    assert opened[-1].closed, "the failed bus was kept open"
    for state in ("unlocked", "locked"):
        thing.update("front.lock", state)
        assert display.refresh()
    assert len(_errors()) == 1
    # Plugged in: the next redraw past the retry wait sets it up on a fresh bus.
    devices[0x3C] = panel = Ssd1306Model()
    monkeypatch.setattr(display_mod, "RETRY_MS", 0)
    thing.update("front.door", "open")
    assert display.refresh()
    assert len(opened) == 2 and not opened[-1].closed
    assert panel.on and panel.shows() == bytes(display.buf)


def test_panel_settings_are_checked_at_config_load():
    bad = ({"panel": "sh1106"}, {"panel": "ssd1306", "height": 48}, {"panel": "ssd1306", "width": 96},
           {"i2c_address": 0x3E}, {"scl_pin": 34}, {"freq_hz": 5000000}, {"i2c_address": True})
    for fields in bad:
        try:
            config.peripheral("display", fields, "board.json", "peripherals[2].")
        except ConfigError as e:
            assert "peripherals[2]." in str(e) and "board.json" in str(e), e
        else:
            raise AssertionError("%r accepted" % (fields,))
    # Without a panel, any buffer size the frame buffer takes, as before.
    assert config.peripheral("display", {"height": 48})["panel"] is None


def test_an_emulated_board_keeps_the_buffer_only():
    from agent.hal.emulated import EmulatedIO
    log.ring.clear()
    thing = Thing("gate-7")
    thing.prop("online", True)
    cfg = config.peripheral("display", {"panel": "ssd1306"})
    display = Display(thing, cfg, None, [], EmulatedIO("127.0.0.1", 1))
    assert display.panel is None and display.refresh() and any(display.buf)
    assert [line for line in log.ring.last(5) if "buffer only" in line]
