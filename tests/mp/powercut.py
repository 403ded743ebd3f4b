# Power-cut trials for the journal on LittleFS, run inside MicroPython:
#   micropython tests/mp/powercut.py FIRST_SEED COUNT
# Each trial: a fresh LittleFS on a RAM-backed block device that "loses
# power" at a random block write (that block is only partly programmed,
# later writes fail), then a remount from the same bytes, as after a
# reboot. Prints one JSON summary line.
import os
import sys
import json
import random

from agent.journal import Journal

BLOCK = 512
BLOCKS = 128          # a 64 KB flash partition
MOUNT = "/flash"


class PowerCut(OSError):
    pass


class CutBlockDev:
    """Block device over a bytearray; power fails at write number cut_at."""

    def __init__(self, data, cut_at=None):
        self.data = data
        self.mv = memoryview(data)
        self.writes = 0
        self.cut_at = cut_at
        self.dead = False

    def readblocks(self, block, buf, offset=0):
        a = block * BLOCK + offset
        buf[:] = self.mv[a:a + len(buf)]

    def writeblocks(self, block, buf, offset=None):
        if offset is None:
            offset = 0
        if self.dead:
            # Power is off: nothing reaches the flash. No exception either:
            # these writes come from finalisers of the dead journal's files,
            # run by the GC with the heap locked.
            return
        self.writes += 1
        a = block * BLOCK + offset
        n = len(buf)
        if self.cut_at is not None and self.writes >= self.cut_at:
            # The cut lands mid-program: only a prefix reaches the flash.
            k = random.randint(0, n)
            self.mv[a:a + k] = buf[:k]
            self.dead = True
            raise PowerCut(5)
        self.mv[a:a + n] = buf

    def ioctl(self, op, arg):
        if op == 4:
            return BLOCKS
        if op == 5:
            return BLOCK
        if op == 6:  # erase: LittleFS programs whole blocks after it
            return 0
        return None


def mount(dev):
    try:
        os.umount(MOUNT)
    except OSError:
        pass
    os.mount(os.VfsLfs2(dev), MOUNT)


def trial(seed):
    random.seed(seed)
    data = bytearray(BLOCK * BLOCKS)
    os.VfsLfs2.mkfs(CutBlockDev(data))
    dev = CutBlockDev(data)
    mount(dev)
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
    # Power off, cut or not: the old mount's objects (finalised later by the
    # GC) must not write into the flash the next boot uses.
    dev.dead = True
    if j.stats["evicted"]:
        return "trial used more than the cap; lower the op count"

    # Reboot: a new device object over the same bytes, power is back.
    dev2 = CutBlockDev(data)
    mount(dev2)
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
