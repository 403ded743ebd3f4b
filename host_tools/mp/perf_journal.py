# Runs inside MicroPython (started by `doorlink perf journal`): appends to a
# journal and reports, as one JSON line, appends per second and bytes that
# reached the flash per record. BACKEND `lfs` (default): agent/journal.py
# on LittleFS over a RAM block device; `raw`: agent/journal_raw.py straight
# on a NOR flash partition (agent/hal/flash.py NorFlash, erases counted).
#   micropython perf_journal.py RECORDS BATCH [lfs|raw]
import json
import sys
import time

from agent.hal.flash import NorFlash, mount, ram_flash

records = int(sys.argv[1])
batch = int(sys.argv[2])
backend = sys.argv[3] if len(sys.argv) > 3 else "lfs"
clock = lambda: 1700000000  # noqa: E731 - one fixed stamp: equal records
if backend == "raw":
    from agent.journal_raw import RawJournal
    # A 512 KB partition that held data before (all 0s, not erased): each
    # sector is erased before its first record, as a ring reuses sectors
    # once it has wrapped, so the erases counted are the steady state's.
    dev = NorFlash(bytearray(512 * 1024))
    j = RawJournal(dev, clock=clock)
else:
    from agent.journal import Journal
    dev = ram_flash(512)  # a 512 KB partition with 4 KB blocks, like an ESP32's
    mount(dev, "/flash", fresh=True)
    j = Journal("/flash/journal", max_bytes=256 * 1024, segment_bytes=4096, clock=clock)
value = {"user": 1234, "state": "in", "action": "FP"}
before, erases = dev.bytes_written, dev.erases
t0 = time.ticks_us()
done = 0
while done < records:
    n = min(batch, records - done)
    j.append_many([("event", "punch", value, None)] * n)
    done += n
us = time.ticks_diff(time.ticks_us(), t0)
print(json.dumps({"backend": backend, "records": records, "batch": batch, "seconds": us / 1e6,
                  "appends_per_s": records / (us / 1e6),
                  "flash_bytes_per_record": (dev.bytes_written - before) / records,
                  "erases": dev.erases - erases,
                  "record_bytes": j.stats["bytes_written"] / records}))
