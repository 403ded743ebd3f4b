# The Wiegand port and reader under MicroPython only: the edge handler's
# work allocates nothing (an ESP32 hard IRQ handler must not: heap_lock()
# makes any allocation a MemoryError, as a hard IRQ does), and what the
# reader and its codec cost on the board's heap.
import gc
import time

import micropython

HEAP_KB = 192
# The reader's whole cost (code, port, a card+PIN entry) must stay a small
# part of a door board's budget.
BUDGET = 12 * 1024


def _edges(port):
    # A 26-bit frame, a 100-bit noise burst a gap later, a key after it:
    # frame splits, the 64-bit cap and an overwritten held frame, all
    # inside the "interrupt".
    for i in range(26):
        port.bit(i & 1, 1000)
    for _ in range(100):
        port.bit(1, 2000)
    port.bit(0, 3000)
    return port.grab(3000)


def _locked(fn, arg):
    """fn(arg) -> a small int, with the heap locked -> (that int, the
    MemoryError or None); the pair is made once the heap is free again."""
    error = None
    n = -1
    micropython.heap_lock()
    try:
        n = fn(arg)
    except MemoryError as e:
        error = e
    micropython.heap_unlock()
    return n, error


def test_edges_and_grab_allocate_nothing():
    from agent.codecs.wiegand import Port
    port = Port(100, time.ticks_diff)
    n, error = _locked(_edges, port)
    assert error is None, "an edge allocated: %s" % error
    assert (n, port.lost) == (100, 1)
    assert port.frame(n) == ((1 << 64) - 1, 100)
    assert port.take(3100) == (0, 1)


async def test_reader_and_codec_heap():
    # What every board has loaded before its peripherals: not the reader's cost.
    from agent import hal, log  # noqa: F401
    gc.collect()
    before = gc.mem_alloc()
    from agent.codecs.wiegand import Port
    from agent.peripherals.reader import Reader

    class Pins:
        def wiegand(self, d0_pin, d1_pin, frame_gap_ms):
            return Port(frame_gap_ms, hal.ticks_diff)

    class Access:
        asked = 0

        async def present(self, door, source, card=None, pin=None):
            Access.asked += 1
            return True, "u1", None

    cfg = {"d0_pin": 4, "d1_pin": 5, "door": "front", "mode": "card_pin", "pin_timeout_s": 10,
           "frame_gap_ms": 100}
    reader = Reader(Access(), Pins(), cfg)
    gc.collect()
    loaded = gc.mem_alloc() - before
    await reader.frame(int("10111101100010001110101110", 2), 26, 0)   # facility 123, card 4567
    for k in (1, 2, 3, 4, 11):
        await reader.frame((k ^ 0xF) << 4 | k, 8, 100)
    assert Access.asked == 1
    gc.collect()
    used = gc.mem_alloc() - before
    assert used < BUDGET, "the reader costs %d bytes" % used
    return "wiegand reader + codec under micropython: %d bytes loaded and set up, %d after a card+PIN entry" % (
        loaded, used)
