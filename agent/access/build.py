# Writing a new base (agent/access/basefile.py): records as they come,
# then the indexes, the trailer, the sync and the rename. Loaded with the
# first full sync or fold, not at start (RAM).
#
# The indexes are built without holding one in RAM: while a new store is
# written, each entry goes to a staging file by the top bits of its key
# (PARTS per kind; keys are hashes, so the parts fill evenly). At the end
# each part is emitted in order by repeated passes that pick the next
# SORT_MAX smallest entries: RAM stays at about 2 x SORT_MAX small entries
# however many users there are, and entries with equal keys (users sharing
# a PIN) are told apart by their offsets. Staging files need no sync: a
# power cut before the new store is renamed into place discards them all.
# 10,000 users make parts of about 600 entries: some 20 passes of 7 KB
# reads each per part, a few seconds per index on a board's flash.
#
# Seconds the event loop must not be held for (a door polls its exit
# button every 50 ms): the long parts are generators whose every `yield`
# is a point where other tasks may run (agent/access/commands.py runs
# them so; drain() runs them straight through). Between two yields the
# work is small: a record, a chunk of a staging file, a staging file
# written. Nothing shared with a lookup (the base file, its buffer) is
# held across a yield.
import os

from agent.access import record as R
from agent.access.basefile import BASE, STAGE, TMP, decode, read_frame, trailer
from agent.access.index import ENTRY, offset_of
from agent.access.record import KEY, KINDS
from agent.codecs import cbor
from agent.hal import sync_dir, sync_file
from agent.journal import frame

PARTS = 16
SORT_MAX = 32
CHUNK = ENTRY * 32
STAGED = 64     # entries buffered before they go to the staging files
DUPS_KEPT = 8   # neighbours with equal id keys kept to check (a real duplicate, or a hash collision)


def drain(steps):
    """Run a generator of steps to its end -> what it returns."""
    try:
        while True:
            next(steps)
    except StopIteration as e:
        return e.value


def stage_name(folder, kind, part):
    return "%s/%s%s%d" % (folder, STAGE, kind.decode(), part)


def clear_stage(folder):
    # By name, not by listing the folder: a listing of PARTS files per kind
    # is a few KB of strings, which a board's heap may not have mid-build.
    for kind in KINDS:
        for part in range(PARTS):
            try:
                os.remove(stage_name(folder, kind, part))
            except OSError:
                pass   # nothing was staged there


def discard(folder):
    """Remove what a build left (a build given up, or one a power cut stopped)."""
    clear_stage(folder)
    try:
        os.remove(folder + "/" + TMP)
    except OSError:
        pass   # none


# Sorts after every entry: fills the unused slots of the pass buffer.
LAST = b"\xff" * (ENTRY + 1)


class Work:
    """The RAM a build needs (about 2 KB), allocated with a store's first
    build and kept for the next: later, a board's heap is more fragmented,
    and even a list growing to a few hundred bytes may find no room. Entries
    on their way to the staging files wait in one buffer (group | entry);
    the passes sort in one list that never grows."""
    __slots__ = ("folder", "keep", "chunk", "_buf", "_n", "_groups")

    def __init__(self):
        self.folder = None
        self.keep = [LAST] * (2 * SORT_MAX)
        self.chunk = bytearray(CHUNK)
        self._buf = bytearray(STAGED * (1 + ENTRY))
        self._n = 0
        self._groups = bytearray(len(KINDS) * PARTS)

    def start(self, folder):
        """A new build in `folder`: whatever an earlier one buffered is dropped."""
        self.folder = folder
        self._n = 0
        for g in range(len(self._groups)):
            self._groups[g] = 0

    def add(self, kind, key, offset):
        """Buffer an entry -> whether the buffer is full (flushing() next)."""
        g = KINDS.index(kind) * PARTS + key[0] * PARTS // 256
        at = self._n * (1 + ENTRY)
        buf = self._buf
        buf[at] = g
        buf[at + 1:at + 1 + KEY] = key
        buf[at + 1 + KEY:at + 1 + ENTRY] = offset.to_bytes(4, "big")
        self._groups[g] = 1
        self._n += 1
        return self._n == STAGED

    def flushing(self):
        """Steps: the buffered entries to their staging files, one file a step."""
        mv = memoryview(self._buf)
        step = 1 + ENTRY
        for g in range(len(self._groups)):
            if not self._groups[g]:
                continue
            self._groups[g] = 0
            with open(stage_name(self.folder, KINDS[g // PARTS], g % PARTS), "ab") as f:
                for at in range(0, self._n * step, step):
                    if self._buf[at] == g:
                        f.write(mv[at + 1:at + step])
            yield
        self._n = 0


def emit(folder, kind, out, work, dup=None):
    """Steps: write the sorted index of `kind` to the open file `out`,
    sorting in `work` (a Work); returns the entry count. `dup(a, b)` is
    called for neighbours with equal keys."""
    n = 0
    prev = None
    keep, chunk = work.keep, work.chunk
    most = len(keep) // 2
    for part in range(PARTS):
        name = stage_name(folder, kind, part)
        last = None
        while True:
            got = yield from _pick(name, last, keep, chunk)
            for i in range(got):
                e = keep[i]
                if dup is not None and prev is not None and prev[:KEY] == e[:KEY]:
                    dup(prev, e)
                out.write(e)
                prev = e
            n += got
            if got < most:
                break
            last = keep[got - 1]
    for i in range(len(keep)):
        keep[i] = LAST   # the entries go back to the heap between builds
    return n


def _pick(name, last, keep, chunk):
    """Steps (one per chunk read): fill `keep` with the (up to) half its
    length smallest entries above `last` in a staging file, sorted;
    returns how many."""
    most = len(keep) // 2
    n = 0
    cut = None
    for i in range(len(keep)):
        keep[i] = LAST
    try:
        f = open(name, "rb")
    except OSError:
        return 0   # nothing was staged in this part
    with f:
        while True:
            got = f.readinto(chunk)
            if not got:
                break
            for i in range(0, got - ENTRY + 1, ENTRY):
                e = bytes(chunk[i:i + ENTRY])
                if (last is not None and e <= last) or (cut is not None and e >= cut):
                    continue
                keep[n] = e
                n += 1
                if n == len(keep):
                    keep.sort()
                    for j in range(most, n):
                        keep[j] = LAST
                    n = most
                    cut = keep[n - 1]
            yield
    keep.sort()
    return min(n, most)


class Builder:
    """Writes a new base to TMP: records as they come (add), then the
    indexes and trailer (finish), then the rename."""
    __slots__ = ("folder", "salt", "size", "users", "touched", "_dups", "_work")

    def __init__(self, folder, salt, work):
        """`work`: the store's Work (one build at a time uses it)."""
        self.folder = folder
        self.salt = salt
        self.size = 0
        self.users = 0
        self.touched = None   # ticks of a full sync's last page (agent/access/changes.py)
        self._dups = []
        self._work = work
        work.start(folder)
        self.discard()
        open(self._p(TMP), "wb").close()

    def _p(self, name):
        return self.folder + "/" + name

    def discard(self):
        discard(self.folder)

    def add(self, items, to_record=None):
        drain(self.adding(items, to_record))

    def adding(self, items, to_record=None):
        """Steps (one per item): append a page: records, or users that
        `to_record` turns into records one at a time (so no page of
        records is held in RAM)."""
        with open(self._p(TMP), "ab") as f:
            for item in items:
                rec = item if to_record is None else to_record(item, self.salt)
                for kind, key in R.keys(rec, self.salt):
                    if self._work.add(kind, key, self.size):
                        yield from self._work.flushing()
                data = frame(cbor.encode(rec))
                f.write(data)
                self.size += len(data)
                self.users += 1
                yield

    def _dup(self, a, b):
        if len(self._dups) < DUPS_KEPT:
            self._dups.append((offset_of(a), offset_of(b)))

    def _check_dups(self):
        with open(self._p(TMP), "rb") as f:
            for a, b in self._dups:
                ra = decode(read_frame(f, a, self.size) or b"")
                rb = decode(read_frame(f, b, self.size) or b"")
                if ra is not None and rb is not None and ra[R.ID] == rb[R.ID]:
                    raise ValueError("user %s is in the sync twice" % ra[R.ID])

    def finishing(self, gen):
        """Steps: the indexes, the trailer and the sync of the new base,
        which rename() then makes the store. ValueError when two records
        share an id."""
        yield from self._work.flushing()
        regions = []
        pos = self.size
        with open(self._p(TMP), "ab") as out:
            for kind in R.KINDS:
                n = yield from emit(self.folder, kind, out, self._work, self._dup if kind == R.BY_ID else None)
                regions.append((pos, n))
                pos += n * ENTRY
        self._check_dups()
        with open(self._p(TMP), "ab") as f:
            f.write(trailer(gen, self.salt, self.users, self.size, regions))
            sync_file(f)

    def rename(self):
        """From here on the new base is the store."""
        os.rename(self._p(TMP), self._p(BASE))
        sync_dir(self.folder)
        clear_stage(self.folder)
