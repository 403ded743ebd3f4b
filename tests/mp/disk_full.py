# The journal on a LittleFS partition smaller than its cap, inside
# MicroPython: the file system fills first. Prints one JSON line.
#   micropython tests/mp/disk_full.py
import json

from agent import log
from agent.hal.flash import BlockDev, mount
from agent.journal import Journal

log.set_level("error")

dev = BlockDev(bytearray(24 * 1024), 512)   # 24 KB of flash...
mount(dev, "/flash", fresh=True)
j = Journal("/flash/j", max_bytes=1 << 20, segment_bytes=1024, clock=lambda: 1)  # ...a 1 MB cap
errors = []
for i in range(2000):
    try:
        j.append("event", "punch", {"i": i, "pad": "z" * 40})
    except OSError as e:
        errors.append(repr(e))
recs = j.read(limit=100000)
ids = [r[0] for r in recs]
print(json.dumps({"errors": errors[:3], "evicted": j.stats["evicted"], "kept": len(recs),
                  "last_id": j.next_id - 1, "first_kept": ids[0] if ids else None,
                  "newest_value": recs[-1][4] if recs else None,
                  "notices": len([r for r in recs if r[3] == "journal_evicted"])}))
