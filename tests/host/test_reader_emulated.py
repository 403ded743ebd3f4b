"""Wiegand on the virtual board: the emulator (host_tools.emulator) swipes
cards and presses keys over loopback, the agent's EmulatedIO feeds the bits
into the reader's port, and the reader presents credentials. CPython side
of the agent; the same hal runs under MicroPython on the virtual board."""

import asyncio

import pytest

from agent import config, log
from agent.hal.emulated import EmulatedIO
from agent.peripherals.reader import Reader
from host_tools.emulator import BoardEmulator, wiegand_card, wiegand_key

from reader_support import Access, until

READER = {"type": "wiegand", "name": "front-reader", "d0_pin": 32, "d1_pin": 33, "door": "front",
          "mode": "card_or_pin", "frame_gap_ms": 30}
BOARD = {"name": "wiegand-test", "hal": "emulated", "peripherals": [READER]}



@pytest.fixture
async def board():
    """(emulator, access, reader) with the agent's hal connected to the emulator."""
    emu = await BoardEmulator(BOARD).start()
    io = EmulatedIO("127.0.0.1", emu.port)
    access = Access()
    fields = {k: v for k, v in READER.items() if k != "type"}
    reader = Reader(access, io, config.peripheral("wiegand", fields))
    tasks = [asyncio.create_task(io.run()), asyncio.create_task(reader.run())]
    try:
        assert await until(lambda: emu.connections == 1)
        yield emu, access, reader
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await emu.stop()


async def test_a_card_swiped_on_the_emulator_reaches_the_access_controller(board):
    emu, access, _ = board
    await emu.swipe_card("front-reader", 123 << 16 | 4567)
    await emu.swipe_card("front-reader", 0xDEADBEEF, bits=34)
    await emu.swipe_card("front-reader", 2652 << 19 | 123456, bits=37)
    assert await until(lambda: len(access.asked) == 3)
    assert access.asked == [("front", "card", 8065495, None), ("front", "card", 0xDEADBEEF, None),
                            ("front", "card", 2652 << 19 | 123456, None)]


async def test_keys_pressed_on_the_emulator_are_a_pin(board):
    emu, access, _ = board
    await emu.press_keys("front-reader", "9*1234#")
    await emu.press_keys("front-reader", "5678#", bits=8)
    assert await until(lambda: len(access.asked) == 2)
    assert access.asked == [("front", "pin", None, "1234"), ("front", "pin", None, "5678")]


async def test_noise_and_bad_parity_from_the_wires_are_counted_not_presented(board):
    emu, access, _ = board
    parity, noise = log.counters.get("wiegand_bad_parity", 0), log.counters.get("wiegand_noise", 0)
    good = wiegand_card(123 << 16 | 4567)
    await emu.send_wiegand_bits("front-reader", good[:-1] + ("1" if good[-1] == "0" else "0"))
    await emu.send_wiegand_bits("front-reader", good[1:])      # a bit lost on the wire
    await emu.send_wiegand_bits("front-reader", "1" * 200)     # a burst of interference
    await emu.swipe_card("front-reader", 7)                     # and the reader still works
    assert await until(lambda: access.asked)
    assert access.asked == [("front", "card", 7, None)]
    assert log.counters.get("wiegand_bad_parity", 0) == parity + 1
    assert log.counters.get("wiegand_noise", 0) == noise + 2


async def test_a_bad_wiegand_line_is_counted_and_the_hal_goes_on(board):
    emu, access, _ = board
    bad = log.counters.get("emulator_bad_lines", 0)
    emu._broadcast({"wiegand": [32, 33], "bits": "01x1"})
    emu._broadcast({"wiegand": [32, 33], "bits": "1" * 257})
    emu._broadcast({"wiegand": [1, 2], "bits": "0101"})          # no reader on those pins
    emu._broadcast({"wiegand": "32", "bits": "0101"})
    await emu.swipe_card("front-reader", 8)
    assert await until(lambda: access.asked)
    assert access.asked == [("front", "card", 8, None)]
    assert log.counters.get("emulator_bad_lines", 0) == bad + 4


def test_the_emulator_encodes_cards_and_keys_as_the_formats_say():
    wire = wiegand_card(123 << 16 | 4567)
    assert wire == "1" + "01111011" + "0001000111010111" + "0"
    assert wiegand_key("5") == "0101" and wiegand_key("#", 8) == "01001011"
    for bad in ((1 << 24, 26), (5, 30)):
        with pytest.raises(ValueError):
            wiegand_card(*bad)
    with pytest.raises(ValueError):
        wiegand_key("A")
