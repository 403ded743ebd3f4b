# The journal on LittleFS inside MicroPython: power cuts at random block
# writes lose no record whose append returned, and a partition smaller than
# the journal's cap fills without an append failing. Then the same on a
# flash that keeps NOR rules (agent.hal.flash.NorFlash: 4 KiB sectors,
# erase to 0xFF, programs only clear bits, cuts inside erases and programs,
# a second cut during the recovery of the boot after), with the workload
# and the checks of tests/mp/journal_oracle.py. (The CPython half: a writer
# killed with SIGKILL, tests/host/test_journal_powercut.py, and the Pi's
# fsync discipline under a crash model, tests/host/test_journal_crash.py.)
import gc
import os
import random

import journal_oracle as oracle

from agent import log
from agent.hal.flash import BlockDev, NorFlash, mount
from agent.journal import Journal

HEAP_KB = 4096
TIMEOUT_S = 300
CUTS = 1000
BLOCK = 512
BLOCKS = 128          # a 64 KB flash partition
MOUNT = "/flash"


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
            # No power: reads as erased (a loop: no allocation under a
            # locked heap). Leaving the buffer as it was hands LittleFS
            # stale metadata, which it can follow into a crash.
            for i in range(len(buf)):
                buf[i] = 0xFF
            return
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
    remount(dev)
    return dev


def remount(dev):
    try:
        os.umount(MOUNT)
    except OSError:
        pass
    os.mount(os.VfsLfs2(dev), MOUNT)


def trial(seed, image):
    random.seed(seed)
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


def test_littlefs_power_cuts_under_micropython(tmp_path):
    """1000 seeded cuts at random block writes of a LittleFS (os.VfsLfs2)
    flash kept in an image file, each followed by a boot from that file."""
    failures = []
    cuts = torn = appends = 0
    for seed in range(CUTS):
        res = trial(seed, tmp_path + "/flash.img")
        if isinstance(res, str):
            failures.append({"seed": seed, "error": res})
            continue
        cuts += res["cut"]
        torn += res["torn"]
        appends += res["appends"]
    assert not failures, (len(failures), failures[:10])
    assert cuts >= CUTS * 0.95, cuts
    return ("journal on LittleFS: %d power cuts, %d appends, 0 records lost (torn tails seen: %d)"
            % (cuts, appends, torn))


def test_full_partition_evicts_counted_instead_of_failing():
    """LittleFS smaller than the journal's cap: the disk fills first. Every
    append still succeeds, and every id is either kept or counted."""
    log.set_level("error")
    dev = BlockDev(bytearray(24 * 1024), 512)   # 24 KB of flash...
    mount(dev, MOUNT, fresh=True)
    j = Journal(MOUNT + "/j", max_bytes=1 << 20, segment_bytes=1024, clock=lambda: 1)  # ...a 1 MB cap
    errors = []
    for i in range(2000):
        try:
            j.append("event", "punch", {"i": i, "pad": "z" * 40})
        except OSError as e:
            errors.append(repr(e))
    recs = j.read(limit=100000)
    assert errors == [], errors[:3]
    notices = [r for r in recs if r[3] == "journal_evicted"]
    assert j.stats["evicted"] > 0 and notices
    assert len(recs) + j.stats["evicted"] == j.next_id - 1
    assert recs[-1][4]["i"] == 1999  # the newest records are the ones kept


# -- NOR flash -------------------------------------------------------------------
NOR_TRIALS = 250
SECTOR = 4096
NOR_SECTORS = 32          # a 128 KiB partition of 4 KiB sectors
NOR_STEPS = 60            # journal operations per boot
NOR_SESSIONS = 3          # boots cut per trial; one more boot checks
NOR_CAP = 2048            # the journal's cap and segment size: evictions happen
NOR_SEGMENT = 512


def nor_trial(seed, totals):
    random.seed(seed)
    rand = random.randrange
    o = oracle.Oracle()
    data = bytearray(b"\xff" * (SECTOR * NOR_SECTORS))   # a new chip: erased
    os.VfsLfs2.mkfs(NorFlash(data, SECTOR))
    cell = [None]

    def alive():
        return not cell[0].dead

    def open_journal():
        return oracle.Watched(o, MOUNT + "/j", max_bytes=NOR_CAP, segment_bytes=NOR_SEGMENT, clock=lambda: seed)

    recovery_cuts = 0
    early = False
    for session in range(NOR_SESSIONS + 1):
        last = session == NOR_SESSIONS
        if last:
            cut_at = None
        elif session and rand(3) == 0:
            cut_at = 1 + rand(6)      # the boot after a cut is itself cut, while it recovers
            early = True
        else:
            cut_at = 1 + rand(NOR_STEPS * 3)
        dev = cell[0] = NorFlash(data, SECTOR, cut_at=cut_at, rand=rand)
        opened = False
        try:
            remount(dev)
            j = open_journal()
            if not alive():
                raise oracle.Cut()
            opened = True
            o.boot(j, "boot %d" % session)
            if not last:
                oracle.run(j, o, rand, NOR_STEPS, alive, open_journal)
        except oracle.Cut:
            recovery_cuts += not opened
        except OSError as e:
            if alive():
                o.problem("littlefs", "boot %d: %r" % (session, e))   # e.g. a mount that fails
            else:
                recovery_cuts += not opened
        # Power off, as in trial(): the old mount's files are finalised now,
        # while it is still mounted; the flash is dead and takes nothing.
        dev.dead = True
        j = None
        gc.collect()
        oracle.count_session(totals, dev, early)
        early = False
        totals["programs"] += dev.writes
        data = bytearray(dev.data)    # what the chip holds at the next power-on
    totals["recovery_cuts"] += recovery_cuts
    oracle.count_trial(totals, o)
    return o.problems


def test_littlefs_on_nor_flash_power_cuts():
    """Seeded workloads of the real journal on LittleFS over a flash that
    keeps NOR rules, power cut inside erases and programs, the boot after a
    cut cut again while it recovers; every boot checked by the oracle."""
    log.set_level("error")
    totals, found = oracle.run_trials(nor_trial, NOR_TRIALS, ("programs", "recovery_cuts"))
    cuts = oracle.clean_cuts(totals, found)
    assert cuts >= NOR_TRIALS * NOR_SESSIONS * 0.9, totals
    assert totals["erase_cuts"] and totals["second_cuts"] and totals["evictions"], totals
    return ("journal on LittleFS on NOR flash (4 KiB sectors): %d power cuts in %d trials (%d inside an erase, "
            "%d inside a program, %d in the first flash operations of the boot after a cut), %d boots checked, "
            "%d appends returned, %d evictions; 0 records lost, 0 ids reused, 0 evictions without a notice, "
            "0 programs over unerased cells"
            % (cuts, NOR_TRIALS, totals["erase_cuts"], totals["program_cuts"], totals["second_cuts"],
               totals["boots"], totals["appends"], totals["evictions"]))


def test_nor_trials_catch_a_missing_sync():
    """The NOR trials bite: with the journal's sync_file broken (the data
    stays in LittleFS's file cache, never committed before append returns)
    they must report lost records."""
    import agent.journal
    log.set_level("error")
    real = agent.journal.sync_file
    agent.journal.sync_file = lambda f: None
    try:
        _, found = oracle.run_trials(nor_trial, 30, ("programs", "recovery_cuts"))
        lost = len(found.get("lost", ()))
    finally:
        agent.journal.sync_file = real
    assert lost > 0, "the NOR trials missed a journal that never syncs"
    return "NOR trials with the journal's sync_file a no-op: %d lost records reported in 30 trials" % lost
