# The Pi's durability: the journal on CPython under a crash model that can
# fail. A SIGKILL (tests/host/test_journal_powercut.py) cannot tell whether
# an fsync is missing: the page cache survives it. A power cut does not.
#
# The model: a small simulated file system, installed with monkeypatch over
# the names the journal and agent.hal reach the disk by - builtins.open and
# os.open, os.close, os.fsync, os.listdir, os.mkdir, os.rmdir, os.remove,
# os.unlink, os.rename, os.replace, os.stat - for paths under SIM only
# (anything else goes to the real functions). SIM names no real folder, so
# a disk call the layer does not intercept fails loudly instead of writing
# around the model. It keeps two states, what the running process sees and
# what a power cut leaves:
# - a file's bytes reach the "page cache" on flush (Python's own buffer
#   first: a write not flushed is not even there), and survive a cut only as
#   of the last os.fsync of that file;
# - a folder's entries (creates, mkdirs, renames, removes) survive only as of
#   the last os.fsync of that folder: a file fsynced into a folder whose
#   entry for it was not, is gone; a rename not followed by one is undone;
# - "writeback" mode adds what a kernel may have written on its own before
#   the cut: for each file, its unsynced bytes per 512-byte sector (any
#   subset, the size anywhere between; a sector not written reads as
#   zeros, so the tail can be torn), for each folder a prefix of its
#   unsynced changes (a journaling file system keeps their order).
# The power fails at the n-th mutating call (open for writing, a flush that
# writes, fsync, mkdir, rename, remove): that call raises PowerCut, a
# BaseException the journal cannot catch, and the file system is dead from
# then on. The next boot is a new file system built from what the cut
# left, and a fresh Journal over it.
#
# Why a Python-level layer and not FUSE or LD_PRELOAD: /dev/fuse exists
# here but no fusermount or Python binding, and a FUSE file system still
# runs under the kernel's page cache (a cut would have to be simulated in it
# all the same); LD_PRELOAD would intercept libc under an interpreter that
# also writes its own files. The journal reaches the disk through a handful
# of Python names: replacing them is exact, deterministic (seeded, every cut
# point reproducible) and fast enough to cut thousands of times. What it
# does not model: a file system that reorders a folder's changes, or loses
# data an fsync had returned.
#
# The checks are the oracle's (tests/mp/journal_oracle.py, shared with the
# LittleFS power-cut test under MicroPython). The test that proves the
# harness bites runs the same trials with sync_file or sync_dir broken and
# requires the model to find the loss.
import builtins
import errno
import importlib.util
import os
import random
import stat
import sys

import pytest

import agent.journal
import agent.small_file
from agent import log
from host_tools.paths import ROOT

SIM = "/doorlink-simfs-not-a-real-folder"
SECTOR = 512
PARENT = SIM + "/var/lib/doorlink/journal"   # made by the installer, long ago: durable
FOLDER = PARENT + "/dev-1"                   # the device's journal folder

_spec = importlib.util.spec_from_file_location("journal_oracle", ROOT / "tests" / "mp" / "journal_oracle.py")
oracle_mod = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(oracle_mod)


class PowerCut(BaseException):
    """The power failed: nothing the process does from here on happens."""


# -- the simulated file system ---------------------------------------------------
class File:
    def __init__(self, data=b""):
        self.data = bytearray(data)   # what the process sees (the page cache)
        self.synced = bytes(data)     # what a power cut leaves


class Dir:
    def __init__(self, entries=None):
        self.entries = dict(entries or {})   # name -> File | Dir, as the process sees them
        self.synced = dict(self.entries)     # as a power cut leaves them
        self.log = []                        # changes since the last fsync, in order

    def change(self, op):
        self.log.append(op)
        _apply(self.entries, op)


def _apply(entries, op):
    if op[0] == "link":
        entries[op[1]] = op[2]
    elif op[0] == "unlink":
        entries.pop(op[1], None)
    else:  # rename: atomic, both names at once
        entries.pop(op[1], None)
        entries[op[2]] = op[3]


def _torn(synced, data, rand):
    """A file's bytes after a cut when the kernel may have written some of
    its unsynced sectors back on its own."""
    lo, hi = sorted((len(synced), len(data)))
    size = (lo, hi, lo + rand(hi - lo + 1))[rand(3)]
    out = bytearray(size)
    for a in range(0, size, SECTOR):
        src = data if rand(2) else synced
        chunk = src[a:a + SECTOR][:size - a]
        out[a:a + len(chunk)] = chunk
    return bytes(out)


class SimFile:
    def __init__(self, fs, node, mode):
        self.fs, self.node, self.mode = fs, node, mode
        self.pos = len(node.data) if "a" in mode else 0
        self.buf = bytearray()     # Python's own buffer: not in the page cache yet
        self.closed = False
        self.fd = None

    def write(self, data):
        if "r" in self.mode:
            raise OSError(errno.EBADF, "not writable")
        self.buf += data
        return len(data)

    def flush(self):
        if self.closed:
            raise ValueError("I/O operation on closed file.")
        if self.buf and not self.fs.dead:
            self.fs.op()
            if "a" in self.mode:
                self.pos = len(self.node.data)
            self.node.data[self.pos:self.pos + len(self.buf)] = self.buf
            self.pos += len(self.buf)
            self.buf = bytearray()

    def read(self, n=-1):
        self.flush()
        end = len(self.node.data) if n is None or n < 0 else self.pos + n
        out = bytes(self.node.data[self.pos:end])
        self.pos += len(out)
        return out

    def seek(self, pos, whence=0):
        self.flush()
        self.pos = pos if whence == 0 else (self.pos + pos if whence == 1 else len(self.node.data) + pos)
        return self.pos

    def tell(self):
        return self.pos + len(self.buf)

    def fileno(self):
        if self.fd is None:
            self.fd = self.fs.new_fd(self.node)
        return self.fd

    def close(self):
        if self.closed:
            return
        if not self.fs.dead:
            self.flush()
        self.closed = True
        self.fs.fds.pop(self.fd, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class SimFS:
    FD0 = 1 << 24

    def __init__(self, root, rand, writeback=False):
        self.root = root
        self.rand = rand
        self.writeback = writeback
        self.ops = 0
        self.cut_at = None
        self.dead = False
        self.left = None            # the crash image, once the power failed
        self.fds = {}
        self.next_fd = self.FD0     # far above any real descriptor
        self.syncs = {"file": 0, "dir": 0}

    # -- power ---------------------------------------------------------------
    def op(self):
        """One mutating call is about to happen; the power may fail first."""
        if self.dead:
            raise PowerCut()
        self.ops += 1
        if self.cut_at is not None and self.ops >= self.cut_at:
            self.power_off()
            raise PowerCut()

    def power_off(self):
        """What the flash holds when the power goes now."""
        if not self.dead:
            self.left = self._durable(self.root, {})
            self.dead = True
        return self.left

    def _durable(self, node, memo):
        if id(node) in memo:
            return memo[id(node)]
        if isinstance(node, File):
            data = _torn(node.synced, node.data, self.rand) if self.writeback else node.synced
            copy = memo[id(node)] = File(data)
            return copy
        entries = dict(node.synced)
        if self.writeback:
            for op in node.log[:self.rand(len(node.log) + 1)]:
                _apply(entries, op)
        copy = memo[id(node)] = Dir()
        copy.entries = {name: self._durable(child, memo) for name, child in entries.items()}
        copy.synced = dict(copy.entries)
        return copy

    def new_fd(self, node):
        fd = self.next_fd
        self.next_fd += 1
        self.fds[fd] = node
        return fd

    # -- names ---------------------------------------------------------------
    def _walk(self, path):
        """(parent folder, name) of a path under SIM."""
        parts = [p for p in path[len(SIM):].split("/") if p]
        node = self.root
        for name in parts[:-1]:
            node = node.entries.get(name) if isinstance(node, Dir) else None
            if not isinstance(node, Dir):
                raise FileNotFoundError(errno.ENOENT, "No such file or directory", path)
        return node, (parts[-1] if parts else None)

    def _node(self, path):
        parent, name = self._walk(path)
        node = parent.entries.get(name) if name is not None else self.root
        if node is None:
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", path)
        return node

    # -- the calls -------------------------------------------------------------
    def open(self, path, mode="r"):
        if "b" not in mode or "+" in mode or "x" in mode:
            raise NotImplementedError("simulated open(%r, %r): add this mode to the model" % (path, mode))
        if "r" in mode:
            node = self._node(path)
            if isinstance(node, Dir):
                raise IsADirectoryError(errno.EISDIR, "Is a directory", path)
            return SimFile(self, node, mode)
        parent, name = self._walk(path)
        node = parent.entries.get(name)
        if isinstance(node, Dir):
            raise IsADirectoryError(errno.EISDIR, "Is a directory", path)
        self.op()
        if node is None:
            node = File()
            parent.change(("link", name, node))
        elif "w" in mode:
            node.data = bytearray()   # O_TRUNC: a change of the file, not of its folder
        return SimFile(self, node, mode)

    def fsync(self, fd):
        node = self.fds.get(fd)
        if node is None:
            raise OSError(errno.EBADF, "Bad file descriptor")
        self.op()
        if isinstance(node, File):
            node.synced = bytes(node.data)
            self.syncs["file"] += 1
        else:
            node.synced = dict(node.entries)
            node.log = []
            self.syncs["dir"] += 1

    def os_open(self, path, flags):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            raise NotImplementedError("simulated os.open(%r) for writing: add it to the model" % path)
        return self.new_fd(self._node(path))

    def close(self, fd):
        if self.fds.pop(fd, None) is None:
            raise OSError(errno.EBADF, "Bad file descriptor")

    def listdir(self, path):
        node = self._node(path)
        if not isinstance(node, Dir):
            raise NotADirectoryError(errno.ENOTDIR, "Not a directory", path)
        return list(node.entries)

    def mkdir(self, path, mode=0o777):
        parent, name = self._walk(path)
        if name in parent.entries:
            raise FileExistsError(errno.EEXIST, "File exists", path)
        self.op()
        parent.change(("link", name, Dir()))

    def rmdir(self, path):
        parent, name = self._walk(path)
        node = self._node(path)
        if not isinstance(node, Dir):
            raise NotADirectoryError(errno.ENOTDIR, "Not a directory", path)
        if node.entries:
            raise OSError(errno.ENOTEMPTY, "Directory not empty", path)
        self.op()
        parent.change(("unlink", name))

    def remove(self, path):
        parent, name = self._walk(path)
        if isinstance(self._node(path), Dir):
            raise IsADirectoryError(errno.EISDIR, "Is a directory", path)
        self.op()
        parent.change(("unlink", name))

    def rename(self, src, dst):
        sp, sn = self._walk(src)
        dp, dn = self._walk(dst)
        node = self._node(src)
        if sp is not dp:
            raise NotImplementedError("simulated rename across folders: add it to the model")
        if isinstance(dp.entries.get(dn), Dir) or isinstance(node, Dir):
            raise NotImplementedError("simulated rename of or over a folder: add it to the model")
        self.op()
        sp.change(("rename", sn, dn, node))

    def stat(self, path):
        node = self._node(path)
        if isinstance(node, Dir):
            return os.stat_result((stat.S_IFDIR | 0o755, 0, 0, 2, 0, 0, 4096, 0, 0, 0))
        return os.stat_result((stat.S_IFREG | 0o644, 0, 0, 1, 0, 0, len(node.data), 0, 0, 0))


def _sim(path):
    return isinstance(path, str) and (path == SIM or path.startswith(SIM + "/"))


class Disk:
    """The machine's one disk: the simulated file system now powered."""
    fs = None


@pytest.fixture
def disk(monkeypatch):
    """Install the layer: the names below, for paths under SIM."""
    real = {name: getattr(os, name) for name in ("open", "close", "fsync", "listdir", "mkdir", "rmdir",
                                                 "remove", "unlink", "rename", "replace", "stat")}
    real_open = builtins.open
    d = Disk()

    def sim_fd(fd):
        if hasattr(fd, "fileno"):
            fd = fd.fileno()
        return d.fs is not None and fd in d.fs.fds

    def one_path(name, method):
        def call(path, *args, **kw):
            if _sim(path):
                return getattr(d.fs, method)(path, *args, **kw)
            return real[name](path, *args, **kw)
        return call

    def two_paths(name):
        def call(src, dst, *args, **kw):
            if _sim(src) or _sim(dst):
                return d.fs.rename(src, dst)
            return real[name](src, dst, *args, **kw)
        return call

    def fd_call(name, method):
        def call(fd, *args):
            if sim_fd(fd):
                return getattr(d.fs, method)(fd.fileno() if hasattr(fd, "fileno") else fd)
            return real[name](fd, *args)
        return call

    def sim_open(file, mode="r", *args, **kw):
        if _sim(file):
            return d.fs.open(file, mode)
        return real_open(file, mode, *args, **kw)

    monkeypatch.setattr(builtins, "open", sim_open)
    monkeypatch.setattr(os, "open", one_path("open", "os_open"))
    for name, method in (("listdir", "listdir"), ("mkdir", "mkdir"), ("rmdir", "rmdir"), ("remove", "remove"),
                         ("unlink", "remove"), ("stat", "stat")):
        monkeypatch.setattr(os, name, one_path(name, method))
    monkeypatch.setattr(os, "rename", two_paths("rename"))
    monkeypatch.setattr(os, "replace", two_paths("replace"))
    monkeypatch.setattr(os, "fsync", fd_call("fsync", "fsync"))
    monkeypatch.setattr(os, "close", fd_call("close", "close"))
    monkeypatch.setattr(log, "_level", [log.LEVELS["error"]])   # evictions warn; thousands of them
    return d


def installed(rand, writeback, fresh_folder=False):
    """A disk as the installer left it: the journal's parent folders exist
    and are durable; the device's folder too, unless fresh_folder."""
    leaf = Dir()
    journal = Dir({} if fresh_folder else {"dev-1": leaf})
    root = Dir({"var": Dir({"lib": Dir({"doorlink": Dir({"journal": journal})})})})
    return SimFS(root, rand, writeback)


# -- the trials ------------------------------------------------------------------
SEGMENT = 512
CAP = 4096
STEPS = 120
SESSIONS = 4


def trial(disk, seed, writeback, fresh_folder=False):
    """One machine: SESSIONS boots, each cut at a random mutating call (a
    third of the boots after a cut are cut again within their first 8
    calls: while they recover), checked at every boot after. Returns the
    oracle."""
    rng = random.Random(seed)
    rand = rng.randrange
    o = oracle_mod.Oracle()
    disk.fs = installed(rand, writeback, fresh_folder)

    def open_journal():
        return oracle_mod.Watched(o, FOLDER, max_bytes=CAP, segment_bytes=SEGMENT, clock=lambda: 1700000000)

    def alive():
        return not disk.fs.dead

    o.counts.update(recovery_cuts=0, second_cuts=0, file_syncs=0, dir_syncs=0)
    for session in range(SESSIONS + 1):
        fs = disk.fs
        last = session == SESSIONS
        early = False
        if not last:
            early = session > 0 and rand(3) == 0
            fs.cut_at = fs.ops + 1 + (rand(8) if early else rand(STEPS * 3))
        opened = False
        try:
            j = open_journal()
            if not alive():
                raise oracle_mod.Cut()
            opened = True
            o.boot(j, "boot %d" % session)
            if not last:
                oracle_mod.run(j, o, rand, STEPS, alive, open_journal)
        except (PowerCut, oracle_mod.Cut):
            o.counts["recovery_cuts"] += not opened
            o.counts["second_cuts"] += early
        o.counts["file_syncs"] += fs.syncs["file"]
        o.counts["dir_syncs"] += fs.syncs["dir"]
        j = None
        disk.fs = SimFS(fs.power_off(), rand, writeback)
    return o


def run_trials(disk, seeds, writeback, fresh_folder=False):
    found = {}
    totals = {}
    for seed in seeds:
        o = trial(disk, seed, writeback, fresh_folder)
        for kind, text in o.problems:
            found.setdefault(kind, []).append("seed %d: %s" % (seed, text))
        for k, v in o.counts.items():
            totals[k] = totals.get(k, 0) + v
    return found, totals


TRIALS = 200      # per mode: 800 sessions, each cut somewhere
MUTANT_TRIALS = 40


def _figure(totals, found):
    return ("%d cuts (%d in the first calls of the boot after a cut, %d of them inside Journal()), %d boots "
            "checked, %d appends returned, %d evictions; lost %d, ids reused %d, cursor wrong %d, "
            "evictions without a notice %d"
            % (totals["cuts"] + totals["recovery_cuts"], totals["second_cuts"], totals["recovery_cuts"],
               totals["boots"],
               totals["appends"], totals["evictions"], len(found.get("lost", ())),
               len(found.get("id_reused", ())),
               len(found.get("cursor_ahead", ())) + len(found.get("cursor_back", ())),
               len({t.split(":")[0] for t in found.get("silent_eviction", ())})))


# -- the model itself --------------------------------------------------------------
def test_model_drops_what_was_not_fsynced(disk):
    disk.fs = fs = installed(random.Random(1).randrange, writeback=False)
    with open(FOLDER + "/kept", "wb") as f:
        f.write(b"synced")
        f.flush()
        os.fsync(f.fileno())
        f.write(b" + flushed, not synced")
        f.flush()
    with open(FOLDER + "/buffered", "wb") as f:
        f.write(b"in Python's buffer")
        os.fsync(f.fileno())          # fsync without flush: the bytes never left the process
    fd = os.open(FOLDER, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)
    with open(FOLDER + "/orphan", "wb") as f:   # its data synced, its folder not
        f.write(b"x")
        f.flush()
        os.fsync(f.fileno())
    os.rename(FOLDER + "/kept", FOLDER + "/renamed")     # not followed by a folder fsync
    os.mkdir(FOLDER + "/sub")
    disk.fs = SimFS(fs.power_off(), fs.rand)
    assert sorted(os.listdir(FOLDER)) == ["buffered", "kept"]
    with open(FOLDER + "/kept", "rb") as f:
        assert f.read() == b"synced"
    with open(FOLDER + "/buffered", "rb") as f:
        assert f.read() == b""
    with pytest.raises(FileNotFoundError):
        os.truncate(FOLDER + "/kept", 0)   # not intercepted: it cannot reach around the model


def test_model_writeback_keeps_synced_bytes_and_folder_order(disk):
    for seed in range(200):
        rand = random.Random(seed).randrange
        disk.fs = fs = installed(rand, writeback=True)
        with open(FOLDER + "/a", "ab") as f:
            f.write(b"A" * 700)
            f.flush()
            os.fsync(f.fileno())
            f.write(b"B" * 1500)
            f.flush()
        os.rename(FOLDER + "/a", FOLDER + "/b")
        os.mkdir(FOLDER + "/c")
        disk.fs = SimFS(fs.power_off(), rand)
        names = sorted(os.listdir(FOLDER))
        assert names in ([], ["a"], ["b"], ["b", "c"]), names   # a prefix of the folder's changes
        if not names:
            continue
        with open(FOLDER + "/" + names[0], "rb") as f:
            data = f.read()
        assert data[:700] == b"A" * 700 and len(data) <= 2200
        assert set(data[700:]) <= {ord("A"), ord("B"), 0}


def test_trials_use_the_real_hal_sync():
    import agent.hal
    assert agent.journal.sync_file is agent.hal.sync_file
    assert agent.journal.sync_dir is agent.hal.sync_dir
    assert agent.small_file.sync_file is agent.hal.sync_file   # the cursor's writer
    assert agent.small_file.sync_dir is agent.hal.sync_dir


# -- the journal under cuts ----------------------------------------------------------
@pytest.mark.parametrize("writeback", [False, True], ids=["strict", "writeback"])
def test_journal_survives_power_cuts_on_cpython(disk, figure, writeback):
    """Seeded workloads of the real Journal, cut at random mutating calls,
    checked at every boot: no record whose append returned is lost, ids are
    never reused, the cursor is right, nothing appears from nowhere."""
    found, totals = run_trials(disk, range(TRIALS), writeback)
    assert not found, {k: v[:5] for k, v in found.items()}
    assert totals["cuts"] + totals["recovery_cuts"] >= TRIALS * SESSIONS * 0.9, totals
    assert totals["second_cuts"] > 0 and totals["evictions"] > 0 and totals["reopens"] > 0, totals
    assert totals["file_syncs"] > 0 and totals["dir_syncs"] > 0, totals
    figure("journal on CPython, fsync crash model (%s): %s"
           % ("unsynced state lost" if not writeback else "unsynced state partly written back, torn sectors",
              _figure(totals, found)))


def test_an_eviction_is_never_silent(disk):
    rand = random.Random(7).randrange
    disk.fs = fs = installed(rand, writeback=False)
    o = oracle_mod.Oracle()

    class CutBeforeTheNotice(oracle_mod.Watched):
        def _sync(self):
            if self.stats["evicted"]:   # the batch that evicted: the power goes before its sync
                fs.power_off()
                raise PowerCut()
            super()._sync()

    j = CutBeforeTheNotice(o, FOLDER, max_bytes=CAP, segment_bytes=SEGMENT, clock=lambda: 1)
    k = 0
    with pytest.raises(PowerCut):
        while True:
            k += 1
            item = ["event", "punch", {"k": k, "pad": "x" * 40}]
            o.begin_append(j, [item])
            o.appended(j, [j.append(*item)], [item])
    disk.fs = SimFS(fs.power_off(), rand)
    o.boot(oracle_mod.Watched(o, FOLDER, max_bytes=CAP, segment_bytes=SEGMENT, clock=lambda: 1), "boot")
    assert o.evicted
    assert not o.problems, o.problems[:3]


def test_a_fresh_journal_folder_survives_a_cut(disk):
    rand = random.Random(3).randrange
    disk.fs = fs = installed(rand, writeback=False, fresh_folder=True)
    j = agent.journal.Journal(FOLDER, max_bytes=CAP, segment_bytes=SEGMENT, clock=lambda: 1)
    rid = j.append("event", "punch", {"k": 1})
    disk.fs = SimFS(fs.power_off(), rand)
    j = agent.journal.Journal(FOLDER, max_bytes=CAP, segment_bytes=SEGMENT, clock=lambda: 1)
    assert [r[0] for r in j.read()] == [rid]
    assert j.next_id == rid + 1


def test_trials_with_a_fresh_journal_folder(disk):
    found, _ = run_trials(disk, range(20), False, fresh_folder=True)
    assert not found, {k: v[:3] for k, v in found.items()}


# -- the harness bites ------------------------------------------------------------------
def _skip_in(function, sync):
    """sync, except when called from `function` (then nothing)."""
    skipped = []

    def patched(arg):
        if sys._getframe(1).f_code.co_name == function:
            skipped.append(arg)
            return None
        return sync(arg)
    patched.skipped = skipped
    return patched


MUTANTS = {
    # name: (what replaces agent.journal's sync_file / sync_dir, the problem the model must report);
    # the cursor is written by agent.small_file: its sync_dir is the one broken there
    "sync_file without fsync": ("sync_file", lambda f: f.flush(), "lost"),
    "sync_file without flush": ("sync_file", lambda f: os.fsync(f.fileno()), "lost"),
    "sync_dir a no-op": ("sync_dir", lambda path: None, "lost"),
    "cursor rename not followed by sync_dir": ("sync_dir", _skip_in("write", agent.small_file.sync_dir),
                                               "cursor_back", agent.small_file),
}


@pytest.mark.parametrize("mutant", list(MUTANTS))
def test_the_model_catches_a_missing_sync(disk, monkeypatch, mutant, figure):
    """The same trials with one sync broken must fail: a missing fsync of a
    file, of a folder, a flush missing before the fsync, a rename left
    undurable."""
    name, broken, kind, *module = MUTANTS[mutant]
    monkeypatch.setattr(module[0] if module else agent.journal, name, broken)
    found, totals = run_trials(disk, range(MUTANT_TRIALS), writeback=False)
    assert found.get(kind), "the crash model missed %r: %s" % (mutant, {k: len(v) for k, v in found.items()})
    if hasattr(broken, "skipped"):
        assert broken.skipped, "the mutant never ran: small_file.write renamed?"
    seeds = {t.split(":")[0] for t in found[kind]}
    figure("crash model, %s: %s in %d of %d trials" % (mutant, kind, len(seeds), MUTANT_TRIALS))
