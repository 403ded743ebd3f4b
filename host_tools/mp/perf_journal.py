# Runs inside MicroPython (started by `doorlink perf journal`): appends to a
# journal on LittleFS over a RAM block device and reports, as one JSON line,
# appends per second and bytes that reached the flash per record.
#   micropython perf_journal.py RECORDS BATCH
import json
import sys
import time

from agent.hal.flash import mount, ram_flash
from agent.journal import Journal

records = int(sys.argv[1])
batch = int(sys.argv[2])
dev = ram_flash(512)  # a 512 KB partition with 4 KB blocks, like an ESP32's
mount(dev, "/flash", fresh=True)
j = Journal("/flash/journal", max_bytes=256 * 1024, segment_bytes=4096, clock=lambda: 1700000000)
value = {"user": 1234, "state": "in", "action": "FP"}
before = dev.bytes_written
t0 = time.ticks_us()
done = 0
while done < records:
    n = min(batch, records - done)
    j.append_many([("event", "punch", value, None)] * n)
    done += n
us = time.ticks_diff(time.ticks_us(), t0)
print(json.dumps({"records": records, "batch": batch, "seconds": us / 1e6,
                  "appends_per_s": records / (us / 1e6),
                  "flash_bytes_per_record": (dev.bytes_written - before) / records,
                  "record_bytes": j.stats["bytes_written"] / records}))
