# The Pi's user store under power cuts: the crash-model file system of
# tests/host/test_journal_crash.py (bytes and folder entries survive only
# as of their last fsync; in writeback mode some unsynced ones survive
# too), cut at every kind of moment of a full sync, its commit and the
# changes after it (folds of the change log included). After each cut the
# store must be the old one or the new one, never a mix, and keep every
# change that returned (tests/mp/users_oracle.py checks; the MicroPython
# half on LittleFS is tests/mp/test_users_powercut.py).
import importlib.util
import random

import pytest

from agent import log
from agent.access.users import UserStore
from host_tools.paths import ROOT


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, ROOT / path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


crash = _load("journal_crash_model", "tests/host/test_journal_crash.py")
oracle = _load("users_oracle", "tests/mp/users_oracle.py")
FOLDER = crash.PARENT + "/dev-1"   # the store's folder lives where a device's journal would
TRIALS = 150


def _readinto(self, buf):
    data = self.read(len(buf))
    buf[:len(data)] = data
    return len(data)


disk = crash.disk   # the model's fixture, installed over the same names


@pytest.fixture(autouse=True)
def _files_read_into_buffers(monkeypatch):
    # The model's files lack readinto (the journal never needed it): the
    # store reads its index entries into one buffer.
    monkeypatch.setattr(crash.SimFile, "readinto", _readinto, raising=False)


def trial(disk, seed, writeback, ops=None):
    rng = random.Random(seed)
    disk.fs = crash.installed(rng.randrange, writeback)
    oracle.setup(UserStore(FOLDER))
    fs = disk.fs
    start = fs.ops
    if ops is not None:
        fs.cut_at = start + 1 + rng.randrange(ops)
    done = []
    try:
        oracle.workload(UserStore(FOLDER), done)
    except crash.PowerCut:
        pass
    used = fs.ops - start
    disk.fs = crash.SimFS(fs.power_off(), rng.randrange, writeback)
    return oracle.check(UserStore(FOLDER), done), used, done


@pytest.mark.parametrize("writeback", [False, True], ids=["strict", "writeback"])
def test_a_power_cut_leaves_the_old_store_or_the_new_one(disk, figure, writeback):
    log.set_level("error")
    _, ops, _ = trial(disk, 0, writeback)      # how many mutating calls the workload makes
    found, olds, news = [], 0, 0
    for seed in range(TRIALS):
        problems, _, done = trial(disk, seed, writeback, ops)
        found += ["seed %d: %s" % (seed, p) for p in problems]
        news += "commit" in done
        olds += "commit" not in done
    assert not found, found[:10]
    assert olds > TRIALS // 10 and news > TRIALS // 10, (olds, news)
    figure("user store on CPython, fsync crash model (%s): %d power cuts over %d mutating calls of a full sync "
           "and %d changes after it; %d before the commit returned, %d after; 0 mixes, 0 lost changes"
           % ("writeback" if writeback else "strict", TRIALS, ops, oracle.PUTS, olds, news))


@pytest.mark.parametrize("module", ["build", "changes"])
def test_the_trials_catch_a_store_that_skips_its_syncs(disk, monkeypatch, module):
    """The harness bites: a new base renamed into place before its bytes
    are synced, or a change answered before it is, is lost to a cut."""
    log.set_level("error")
    import agent.access.build
    import agent.access.changes
    monkeypatch.setattr(getattr(agent.access, module), "sync_file", lambda f: None)
    _, ops, _ = trial(disk, 0, False)
    bad = sum(1 for seed in range(40) if trial(disk, seed, False, ops)[0])
    assert bad > 0
