# Power-cut trials for the journal on LittleFS, run inside MicroPython:
#   micropython tests/mp/powercut.py FIRST_SEED COUNT [IMAGE_FILE]
# Each trial: a fresh LittleFS on a file-backed block device (the hal's
# flash) that "loses power" at a random block write (that block is only
# partly programmed, nothing after it is written), then a boot from what
# the image file holds. Prints one JSON summary line.
import gc
import json
import os
import random
import sys

from agent.hal.flash import BlockDev
from agent.journal import Journal

BLOCK = 512
BLOCKS = 128          # a 64 KB flash partition
MOUNT = "/flash"
IMAGE = "/tmp/doorlink-powercut.img"  # or argv[3]


class PowerCut(OSError):
    pass


class CutBlockDev(BlockDev):
    """The hal's file-backed flash, with power failing at write `cut_at`."""

    def __init__(self, data, image, cut_at=None):
        super().__init__(data, BLOCK, image)
        self.cut_at = cut_at
        self.dead = False

    def readblocks(self, block, buf, offset=0):
        if self.dead:
            return  # no power, no data (and no allocation under a locked heap)
        super().readblocks(block, buf, offset)

    def writeblocks(self, block, buf, offset=None):
        if self.dead:
            # Power is off: nothing reaches the flash. No exception either:
            # these writes come from finalisers of the dead journal's files,
            # run by the GC with the heap locked.
            return
        if self.cut_at is not None and self.writes + 1 >= self.cut_at:
            # The cut lands mid-program: only a prefix reaches the flash.
            k = random.randint(0, len(buf))
            super().writeblocks(block, buf[:k], offset)
            self.dead = True
            raise PowerCut(5)
        super().writeblocks(block, buf, offset)


def boot(image_path, cut_at=None):
    """Power on: the flash chip's content is what the image file holds."""
    with open(image_path, "rb") as f:
        data = bytearray(f.read())
    dev = CutBlockDev(data, open(image_path, "r+b"), cut_at)
    mount(dev)
    return dev


def mount(dev):
    try:
        os.umount(MOUNT)
    except OSError:
        pass
    os.mount(os.VfsLfs2(dev), MOUNT)


def trial(seed):
    random.seed(seed)
    image = sys.argv[3] if len(sys.argv) > 3 else IMAGE
    with open(image, "wb") as f:
        f.write(bytearray(BLOCK * BLOCKS))
    with open(image, "r+b") as f:
        os.VfsLfs2.mkfs(CutBlockDev(bytearray(BLOCK * BLOCKS), f))
    dev = boot(image)
    j = Journal(MOUNT + "/j", max_bytes=40 * 1024, segment_bytes=1024, clock=lambda: seed)
    dev.cut_at = dev.writes + random.randint(1, 600)
    returned = {}     # id -> value, for every append that returned
    order = []
    acked = 0
    cut = False
    try:
        for k in range(400):
            if order and random.randint(0, 9) == 0:
                upto = order[random.randint(0, len(order) - 1)]
                acked = max(acked, upto)  # asked for: the cut may land inside ack()
                j.ack(upto)
            else:
                value = {"k": k, "pad": "x" * random.randint(0, 60)}
                rid = j.append("event", "punch", value)
                returned[rid] = value
                order.append(rid)
    except OSError:
        cut = True
    # Power off, cut or not: the old mount's objects must not write into the
    # flash the next boot uses. Their files are finalised now, while that old
    # file system is still mounted: a finaliser running after the remount
    # would close a file of an unmounted LittleFS (the unix port has crashed
    # on that, once in many runs, depending on when the GC happened to run).
    dev.dead = True
    evicted = j.stats["evicted"]
    j = None
    gc.collect()
    dev.image.close()
    if evicted:
        return "trial used more than the cap; lower the op count"

    # Reboot: power is back; the flash holds what reached the image file.
    dev2 = boot(image)
    j2 = Journal(MOUNT + "/j", max_bytes=40 * 1024, segment_bytes=1024, clock=lambda: seed)
    if j2.acked > acked:
        return "cursor %d beyond what was acknowledged (%d)" % (j2.acked, acked)
    recs = j2.read(limit=100000)
    ids = [r[0] for r in recs]
    if ids != sorted(ids) or len(set(ids)) != len(ids):
        return "records out of order or repeated: %r" % ids[:20]
    got = {r[0]: r[4] for r in recs}
    in_flight = (order[-1] + 1) if order else 1
    for rid in order:
        if rid > j2.acked and got.get(rid) != returned[rid]:
            return "record %d lost or changed after the cut (got %r)" % (rid, got.get(rid))
    for rid in got:
        if rid not in returned and rid != in_flight:
            return "record %d appeared from nowhere" % rid
    nxt = j2.append("event", "after", {})
    j2.close()
    dev2.image.close()
    if order and nxt <= order[-1]:
        return "id %d reused after reboot (last returned %d)" % (nxt, order[-1])
    return {"cut": cut, "appends": len(order), "torn": j2.stats["torn_bytes"] > 0}


def main():
    first = int(sys.argv[1])
    count = int(sys.argv[2])
    failures = []
    cuts = torn = appends = 0
    for seed in range(first, first + count):
        res = trial(seed)
        if isinstance(res, str):
            failures.append({"seed": seed, "error": res})
            continue
        cuts += res["cut"]
        torn += res["torn"]
        appends += res["appends"]
    print(json.dumps({"trials": count, "cuts": cuts, "torn_tails": torn, "appends": appends,
                      "failures": failures[:10], "failed": len(failures)}))


main()
