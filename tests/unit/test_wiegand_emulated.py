# The emulated hal's Wiegand lines on both runtimes (the virtual board runs
# this hal under MicroPython): a burst of bits from the emulator lands in
# the reader's port as edges would, and a hostile line is refused whole,
# counted, and feeds no bit. Over a real socket: tests/host/test_reader_emulated.py.
import json

from agent import log
from agent.codecs.wiegand import decode
from agent.hal.emulated import MAX_BURST, EmulatedIO

CARD = "10111101100010001110101110"   # facility 123, card 4567


def line(pins, bits):
    return (json.dumps({"wiegand": pins, "bits": bits}) + "\n").encode()


def test_a_burst_from_the_emulator_is_a_frame_in_the_port():
    io = EmulatedIO("127.0.0.1", 1)
    port = io.wiegand(32, 33, 30)
    other = io.wiegand(25, 26, 30)
    io._apply(line([32, 33], CARD))
    assert port.count == 26 and other.count == 0
    assert decode(*port.take(port.last_ms + 30)) == ("card", 123 << 16 | 4567, 26)


def test_hostile_lines_feed_no_bit_and_are_counted():
    io = EmulatedIO("127.0.0.1", 1)
    port = io.wiegand(32, 33, 30)
    before = log.counters.get("emulator_bad_lines", 0)
    bad = [line([32, 33], "0120"), line([32, 33], "1" * (MAX_BURST + 1)), line([32, 34], "01"),
           line([7, 8], "01"), line("32", "01"), line([32, 33, 34], "01"), line([[32], 33], "01"),
           line([32, 33], 5), line([32, 33], None), b'{"wiegand": [32, 33]}\n']
    for b in bad:
        io._apply(b)
    assert port.count == 0
    assert log.counters.get("emulator_bad_lines", 0) == before + len(bad)
    io._apply(line([32, 33], "1" * MAX_BURST))      # the longest burst is still taken
    value, nbits = port.take(port.last_ms + 30)
    assert nbits == MAX_BURST and decode(value, nbits) == ("noise", MAX_BURST)
