# Writes a LittleFS flash image holding a small journal, from MicroPython,
# for the host's `doorlink journal` to decode (tests/host/test_journal_tool.py
# runs it with the `micropython` fixture):
#   micropython tests/mp/make_image.py OUT.img
import sys

from agent.hal.flash import mount, ram_flash
from agent.journal import Journal

dev = ram_flash(128)
mount(dev, "/flash", fresh=True)
j = Journal("/flash/journal/dev-9", clock=lambda: 1700000000)
for i in range(5):
    j.append("event", "punch", {"user": i})
j.ack(2)
j.close()
with open(sys.argv[1], "wb") as f:
    f.write(dev.data)
