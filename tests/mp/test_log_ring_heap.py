# What the console's ring (agent/log_ring.py, read by log_tail) costs on a
# board's heap under MicroPython: its code and a full ring of agent-like
# lines, and that a chatty log does not grow it.
import gc

HEAP_KB = 96
# Code (compiled from source here: less as .mpy) plus a full ring: its
# 3 KB bound of text and the objects that hold the lines.
BUDGET = 8 * 1024


def _line(i):
    return "12:34:%02d INFO  uplink: line %d of a chatty log: %s" % (i % 60, i, "z" * (i % 90))


def test_a_full_ring_costs_little_and_a_chatty_log_does_not_grow_it():
    from agent import thing  # noqa: F401 - loaded on every board before the log is
    gc.collect()
    before = gc.mem_alloc()
    from agent.log_ring import LogRing
    ring = LogRing()
    gc.collect()
    code = gc.mem_alloc() - before
    for i in range(200):
        ring.add(_line(i))
    gc.collect()
    full = gc.mem_alloc() - before
    for i in range(2000):
        ring.add(_line(i))
    gc.collect()
    after = gc.mem_alloc() - before
    kept = len(ring)
    assert full <= BUDGET, "a full ring costs %d bytes" % full
    assert after <= full + 256, "the ring grew from %d to %d bytes" % (full, after)
    assert ring.newest() == 2200 and ring._bytes <= 3072
    return ("log ring on MicroPython: code + empty ring %d B, full (%d lines) %d B (lines %d B), "
            "after 2000 more %d B" % (code, kept, full, full - code, after))
