# The user store on LittleFS inside MicroPython, on a flash that keeps NOR
# rules (agent.hal.flash.NorFlash: 4 KiB sectors, erase to 0xFF, programs
# only clear bits) with the power cut inside an erase or a program,
# anywhere in a full sync, its commit and the changes after it. After each
# cut the store must be the old one or the new one, never a mix, and keep
# every change that returned (tests/mp/users_oracle.py; the CPython half is
# tests/host/test_users_crash.py).
import gc
import os
import random

import users_oracle as oracle

from agent import log
from agent.access.users import UserStore
from agent.hal.flash import NorFlash

HEAP_KB = 4096
TIMEOUT_S = 600
TRIALS = 80
SECTOR = 4096
SECTORS = 96          # a 384 KiB partition
MOUNT = "/flash"
FOLDER = MOUNT + "/users/dev-1"


def remount(dev):
    try:
        os.umount(MOUNT)
    except OSError:
        pass
    os.mount(os.VfsLfs2(dev), MOUNT)


def fresh():
    """A machine set up with the old users, powered throughout: its flash."""
    data = bytearray(b"\xff" * (SECTOR * SECTORS))
    dev = NorFlash(data, SECTOR)
    os.VfsLfs2.mkfs(dev)
    remount(dev)
    oracle.setup(UserStore(FOLDER))
    gc.collect()
    return dev


def power_off(dev):
    # The old mount's files are finalised now, while it is still mounted
    # (tests/mp/test_journal_powercut.py says why); the dead chip takes nothing.
    dev.dead = True
    gc.collect()
    return bytearray(dev.data)


def trial(seed, ops=None, erases=None):
    """One workload with the power cut at a random operation of the first
    `ops`, or inside a random erase of the first `erases`."""
    random.seed(seed)
    dev = fresh()
    data = dev.data
    cut = NorFlash(data, SECTOR, cut_at=None, rand=random.randrange)
    remount(cut)
    done = []
    store = UserStore(FOLDER)
    start = cut.ops
    start_erases = cut.erases
    if erases:
        cut.erase_cut_at = start_erases + 1 + random.randrange(erases)
    elif ops is not None:
        cut.cut_at = start + 1 + random.randrange(ops)
    try:
        oracle.workload(store, done)
    except OSError:
        if not cut.dead:
            raise
    used = cut.ops - start
    erased = cut.erases - start_erases
    store = None
    data = power_off(cut)
    remount(NorFlash(data, SECTOR))
    problems = oracle.check(UserStore(FOLDER), done)
    return problems, used, erased, done, cut.cut_in


def test_a_power_cut_on_nor_flash_leaves_the_old_store_or_the_new_one():
    log.set_level("error")
    _, ops, erases, _, _ = trial(0)
    found = []
    olds = news = erase_cuts = 0
    for seed in range(TRIALS):
        # Erases are a few percent of the operations: one trial in eight
        # cuts inside one, so every run has some (the store's salt is
        # random, and with it the count of operations a workload takes).
        # Among the first erases: a trial may take a few fewer.
        in_erase = erases - 4 if seed % 8 == 7 and erases > 8 else None
        problems, _, _, done, cut_in = trial(seed, ops, in_erase)
        found += ["seed %d: %s" % (seed, p) for p in problems]
        news += "commit" in done
        olds += "commit" not in done
        erase_cuts += cut_in == "erase"
    assert not found, found[:10]
    assert olds and news and erase_cuts, (olds, news, erase_cuts)
    return ("user store on LittleFS on NOR flash: %d power cuts over %d flash operations of a full sync and %d "
            "changes after it (%d inside an erase); %d before the commit returned, %d after; 0 mixes, 0 lost "
            "changes" % (TRIALS, ops, oracle.PUTS, erase_cuts, olds, news))
