"""Wiegand on the Raspberry Pi hal: D0/D1 pulses on gpiozero's MockFactory
pins become frames, and a reader over them presents the card. CPython only."""

import asyncio

from agent import config, hal
from agent.codecs.wiegand import decode
from agent.peripherals.reader import Reader
from host_tools.emulator import wiegand_card, wiegand_key

from reader_support import Access, until

D0, D1 = 23, 24
GAP_MS = 25



def pulse(factory, bits):
    """What a reader does: each bit a short low pulse on D0 (0) or D1 (1)."""
    for b in bits:
        pin = factory.pin(D1 if b == "1" else D0)
        pin.drive_low()
        pin.drive_high()


def test_pulses_on_d0_and_d1_are_a_frame(factory, io):
    port = io.wiegand(D0, D1, GAP_MS)
    assert factory.pin(D0).state and factory.pin(D1).state, "the lines idle high on their pull-ups"
    wire = wiegand_card(123 << 16 | 4567, 26)
    pulse(factory, wire)
    assert port.count == 26
    assert port.take(port.last_ms + GAP_MS - 1) is None   # the frame may still go on
    value, nbits = port.take(port.last_ms + GAP_MS)
    assert (value, nbits) == (int(wire, 2), 26)
    assert decode(value, nbits) == ("card", 8065495, 26)


def test_a_rising_edge_is_not_a_bit(factory, io):
    port = io.wiegand(D0, D1, GAP_MS)
    factory.pin(D1).drive_low()
    factory.pin(D1).drive_high()
    factory.pin(D1).drive_high()
    assert port.count == 1
    assert port.take(port.last_ms + GAP_MS) == (1, 1)



async def test_a_reader_on_the_pi_hal_takes_card_then_pin(factory, io):
    access = Access()
    cfg = config.peripheral("wiegand", {"d0_pin": D0, "d1_pin": D1, "door": "front", "mode": "card_pin",
                                        "frame_gap_ms": GAP_MS})
    reader = Reader(access, io, cfg)
    task = asyncio.create_task(reader.run())
    try:
        pulse(factory, wiegand_card(1001, 34))
        for key in "42#":
            # A person's keypresses: each frame ends before the next begins.
            assert await until(lambda: reader.port.count == 0 and hal.ticks_diff(
                hal.ticks_ms(), reader.port.last_ms) > GAP_MS)
            pulse(factory, wiegand_key(key, 8))
        assert await until(lambda: access.asked)
        assert access.asked == [("front", "card_pin", 1001, "42")]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
