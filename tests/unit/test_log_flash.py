# The console's lines on flash (agent/log_flash.py), on both runtimes: they
# survive a restart (a new FlashLog on the same folder), stay within two
# parts, come back newest last, and are gone after clear().
import os

from agent.log_flash import PREFIX, FlashLog
from agent.log_ring import LogRing

from support import tmpdir


def _logged(ring, *texts):
    for t in texts:
        ring.add(t)


def test_lines_survive_a_restart_and_come_back_newest_last():
    folder = tmpdir() + "/log"
    ring = LogRing()
    logs = FlashLog(folder, ring)
    _logged(ring, "boot 1 a", "boot 1 b")
    logs.flush()
    _logged(ring, "boot 1 c")   # not flushed yet: last() flushes first
    assert logs.last(2) == ["boot 1 b", "boot 1 c"]
    # A reboot: a fresh RAM ring, a fresh FlashLog on the same folder.
    ring2 = LogRing()
    logs2 = FlashLog(folder, ring2)
    _logged(ring2, "boot 2 a")
    assert logs2.last(10) == ["boot 1 a", "boot 1 b", "boot 1 c", "boot 2 a"]
    assert logs2.last(1) == ["boot 2 a"] and logs2.last(0) == []


def test_the_flash_ring_keeps_two_parts_at_most_and_the_newest_lines():
    folder = tmpdir() + "/log"
    ring = LogRing()
    logs = FlashLog(folder, ring, part_bytes=1024)
    for i in range(300):
        ring.add("line %03d %s" % (i, "x" * 40))
        if i % 7 == 0:
            logs.flush()
    kept = logs.last(1000)
    assert kept[-1].startswith("line 299") and len(kept) >= 1024 // 50
    names = [n for n in os.listdir(folder) if n.startswith(PREFIX)]
    assert len(names) == 2
    assert sum(os.stat(folder + "/" + n)[6] for n in names) <= 2 * 1024
    # In order, none repeated, none skipped within what is kept.
    numbers = [int(line.split()[1]) for line in kept]
    assert numbers == list(range(numbers[0], 300))


def test_clear_forgets_the_lines_on_flash_and_in_ram_for_good():
    folder = tmpdir() + "/log"
    ring = LogRing()
    logs = FlashLog(folder, ring)
    _logged(ring, "secret-ish line", "another")
    logs.flush()
    logs.clear()
    assert logs.last(10) == []
    _logged(ring, "after")
    assert logs.last(10) == ["after"]
    assert FlashLog(folder, LogRing()).last(10) == ["after"]
