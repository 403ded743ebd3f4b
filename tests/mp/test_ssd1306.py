# The display's SSD1306 panel on the ESP32 hal under MicroPython: the
# stand-in machine.I2C (tests/mp/stubs/machine.py) hands every write to a
# model of the chip (tests/ssd1306_model.py) that interprets the command
# stream into its own GDDRAM, so the asserts are on what the panel lights,
# byte for byte against the frame buffer screen/snapshot reads.
import asyncio
import gc
import sys
import time

import machine

from agent import config, log
from agent.thing import Thing

STUBS = True
HEAP_KB = 384       # the ESP32 door board's budget: one test starts its whole agent
TIMEOUT_S = 60
ADDR = 0x3C


def _model():
    if "tests" not in sys.path:
        sys.path.append("tests")   # shared with the Pi's test (tests/host/test_display_panel.py)
    from ssd1306_model import Ssd1306Model
    return Ssd1306Model()


def _display(**fields):
    from agent.hal.esp32 import Esp32IO
    from agent.peripherals.display import Display
    thing = Thing("gate-7")
    thing.prop("online", False)
    thing.prop("front.lock", "locked")
    thing.prop("front.door", "closed")
    cfg = config.peripheral("display", dict({"panel": "ssd1306"}, **fields))
    return thing, Display(thing, cfg, "front", [], Esp32IO())


def _logged(since, word):
    return [line for line in log.ring.last(50)[since:] if word in line]


def _fresh():
    machine.i2c_devices.clear()
    log.counters.clear()
    log.ring.clear()


def test_the_panel_lights_exactly_the_frame_buffer():
    for rows in (64, 32):
        _fresh()
        panel = machine.i2c_devices[ADDR] = _model()
        thing, display = _display(height=rows)
        assert panel.on and panel.charge_pump, "init leaves the panel dark"
        assert panel.mux == rows - 1 and panel.com_pins == (0x12 if rows == 64 else 0x02)
        assert (panel.segment_remap, panel.com_scan_dec, panel.inverted, panel.entire_on) == (True, True, False, False)
        assert display.refresh()
        assert panel.shows() == bytes(display.buf), "the panel does not show what a snapshot shows"
        assert any(display.buf), "the frame is blank: the comparison proves nothing"
        thing.update("online", True)
        thing.update("front.lock", "unlocked")
        assert display.refresh()
        assert panel.shows() == bytes(display.buf)
        # Small transactions: 32 data bytes and the control byte at most.
        assert max(panel.transactions) <= 33, panel.transactions
        assert log.counters.get("display_errors") is None


def test_a_missing_panel_is_one_clear_error_at_start_and_the_door_goes_on():
    _fresh()
    machine.i2c_devices[ADDR] = _model()       # a panel, but at 0x3C
    thing, display = _display(i2c_address=0x3D, scl_pin=4, sda_pin=5)
    errors = _logged(0, "ERROR")
    assert len(errors) == 1, errors
    assert "0x3D" in errors[0] and "scl=4, sda=5" in errors[0] and "check its wiring" in errors[0], errors[0]
    # The buffer goes on: redraws happen and screen/snapshot has them.
    frames = set()
    for state in ("unlocked", "locked", "unlocked"):
        thing.update("front.lock", state)
        assert display.refresh()
        frames.add(bytes(display.buf))
    assert len(frames) == 2, "the buffer stopped following the door"
    assert len(_logged(0, "ERROR")) == 1, "a missing panel is logged on every redraw"
    assert log.counters["display_errors"] == 1


async def test_a_loose_cable_is_logged_once_and_the_panel_comes_back_by_itself():
    from agent.peripherals import display as display_mod
    _fresh()
    machine.i2c_devices[ADDR] = _model()
    thing, display = _display()
    display_mod.RETRY_MS = 200
    task = asyncio.create_task(display.run())
    await asyncio.sleep(0.25)
    del machine.i2c_devices[ADDR]              # the cable comes loose
    loose = time.ticks_ms()
    for i in range(6):                         # the door goes on: six changes, six redraws
        thing.update("front.lock", "unlocked" if i % 2 == 0 else "locked")
        await asyncio.sleep(0.12)
    errors = _logged(0, "ERROR")
    assert len(errors) == 1, errors
    # Tried again, but no more than once per RETRY_MS (however slow this machine ran).
    failures = log.counters["display_errors"]
    assert 2 <= failures <= time.ticks_diff(time.ticks_ms(), loose) // 200 + 1, failures
    panel = machine.i2c_devices[ADDR] = _model()   # re-seated: a panel fresh from power-up
    await asyncio.sleep(0.5)
    task.cancel()
    await asyncio.sleep(0)
    assert panel.on and panel.charge_pump, "the re-seated panel was not set up again"
    assert panel.shows() == bytes(display.buf)
    assert len(_logged(0, "answers again")) == 1
    assert len(_logged(0, "ERROR")) == 1


async def test_the_panel_is_written_on_a_redraw_only():
    _fresh()
    panel = machine.i2c_devices[ADDR] = _model()
    thing, display = _display()
    task = asyncio.create_task(display.run())
    await asyncio.sleep(0.15)
    drawn = len(panel.transactions)
    await asyncio.sleep(0.5)                      # five polls, nothing changed
    assert len(panel.transactions) == drawn, "the panel is rewritten on every poll"
    thing.update("front.door", "open")
    await asyncio.sleep(0.15)
    task.cancel()
    await asyncio.sleep(0)
    assert len(panel.transactions) == drawn + 1 + 32, "one frame: the window, then 32 chunks of 32 bytes"
    assert panel.shows() == bytes(display.buf)


async def test_a_frame_goes_out_a_write_at_a_time_with_the_loop_running_between():
    # ~25 ms on the wire at 400 kHz, ~100 ms at 100 kHz: an exit button or a
    # card is not kept waiting while a frame crosses the bus.
    _fresh()
    panel = machine.i2c_devices[ADDR] = _model()
    thing, display = _display()
    task = asyncio.create_task(display.run())
    await asyncio.sleep(0.15)                     # the first frame
    start = len(panel.transactions)
    between = set()   # how far the frame had got each time other work ran (a set: the loop spins)

    async def other_work():
        while True:
            n = len(panel.transactions)
            if start < n < start + 33:
                between.add(n)
            await asyncio.sleep(0)

    watcher = asyncio.create_task(other_work())
    thing.update("front.door", "open")
    await asyncio.sleep(0.15)
    task.cancel()
    watcher.cancel()
    await asyncio.sleep(0)
    assert len(panel.transactions) == start + 33, "one frame: the window, then 32 chunks"
    assert len(between) >= 30, "the loop ran between only %d of the frame's 33 writes" % len(between)
    assert panel.shows() == bytes(display.buf)


def test_an_esp32_door_agent_starts_with_its_panel_missing(tmp_path):
    # The DevKitC door board with a panel that is not at its address: the
    # agent comes up, its door locked and its buffer drawn, one error said.
    import json

    from agent.device import Device
    from agent.hal.esp32 import Esp32IO

    _fresh()
    machine.i2c_devices[ADDR] = _model()
    folder = tmp_path + "/board"
    with open("boards/esp32-devkitc-door.json") as f:
        board = json.loads(f.read())
    board["journal"]["path"] = folder
    board["peripherals"].append({"type": "display", "panel": "ssd1306", "i2c_address": 0x3D})
    with open(folder + ".json", "w") as f:
        f.write(json.dumps(board))
    board = config.load_board(folder + ".json")
    site = {"server": "ws://127.0.0.1:1/ws", "device_id": "d1", "token": "t"}
    with open(folder + "-site.json", "w") as f:
        f.write(json.dumps(site))
    site = config.load_site(folder + "-site.json")
    board["journal"]["folder"] = config.journal_folder(board, site, folder + ".json", "journal.path")
    device = Device(board, site, Esp32IO())
    assert device.thing.get("front.lock") == "locked"
    assert device.display.refresh() and any(device.display.buf)
    errors = _logged(0, "ERROR")
    assert len(errors) == 1 and "0x3D" in errors[0] and "scl=22, sda=21" in errors[0], errors
    assert machine.i2c_devices[ADDR].transactions == [], "something else was written to the 0x3C device"


def test_wiring_the_chip_cannot_do_is_refused_at_start():
    from agent.hal.esp32 import Esp32IO
    io = Esp32IO()
    for scl, sda, why in ((36, 21, "only be an input"), (22, 22, "both GPIO22"), (7, 21, "SPI flash")):
        cfg = config.peripheral("display", {"panel": "ssd1306", "scl_pin": 22, "sda_pin": 21})
        cfg["scl_pin"], cfg["sda_pin"] = scl, sda   # past the config's own range check, as a hand-made cfg
        try:
            io.i2c(cfg)
        except ValueError as e:
            assert why in str(e), e
        else:
            raise AssertionError("SCL %d / SDA %d accepted" % (scl, sda))


def test_heap_of_the_driver():
    """Import + init + one show, and what a show allocates (nothing)."""
    import micropython

    class Sink:   # a panel that takes every byte and keeps none (the model's lists would be counted)
        def write(self, buf):
            pass

    _fresh()
    machine.i2c_devices[ADDR] = Sink()
    i2c = machine.I2C(0, scl=machine.Pin(22), sda=machine.Pin(21), freq=400000)
    frame = bytearray(1024)
    gc.collect()
    before = gc.mem_alloc()
    from agent.hal.ssd1306 import Ssd1306
    panel = Ssd1306(i2c, 128, 64, ADDR)
    panel.init()
    panel.show(frame)
    gc.collect()
    kept = gc.mem_alloc() - before
    micropython.heap_lock()
    try:
        panel.show(frame)       # a MemoryError here: a show allocates
    finally:
        micropython.heap_unlock()
    assert kept < 4096, kept
    return "ssd1306 driver: %d bytes kept after import + init + one show (source-compiled); 0 bytes per show" % kept
