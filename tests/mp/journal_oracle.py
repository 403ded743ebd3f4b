# The journal's promises, checked from outside, for the crash tests of both
# runtimes: tests/mp/test_journal_powercut.py (LittleFS on NOR flash, inside
# MicroPython) and tests/host/test_journal_crash.py (the Pi's file journal
# on a file system that forgets whatever was not fsynced). Plain Python that
# MicroPython runs too; the host test loads it by its path.
#
# A workload of the real agent.journal.Journal (append, append_many, a
# cloud that reads and acknowledges, flush_cursor, a clean close and
# reopen; segment rotation and eviction at the cap follow from the sizes)
# runs until the power fails; at every boot after, the Oracle checks:
# - lost: every record whose append returned is read back, intact and in
#   order, unless the cloud acknowledged it or the cap evicted it;
# - silent_eviction: an evicted record is covered by a journal_evicted
#   notice (read back, read by the cloud before, or recovered by the
#   journal to be written with its next append);
# - id_reused: ids strictly increase over every append that returned, and
#   the journal's next id is above all of them;
# - cursor_ahead / cursor_back: the cursor is never ahead of what was
#   acknowledged (or evicted), never behind a cursor write that completed;
# - order / from_nowhere: a read gives ascending ids above the cursor, each
#   one a record an append wrote, with what it wrote.
from agent.journal import Journal

NOTICE = "journal_evicted"
WILD = None   # the content of a notice: checked against the evictions instead


class Cut(Exception):
    """The power failed during a call: whatever it did is in doubt."""


def watched(base):
    """A journal class (agent.journal.Journal or one built on it, such as
    agent.journal_raw.RawJournal) whose evictions are noted for the oracle
    (before the segment goes); nothing else differs."""

    class Watched(base):
        def __init__(self, oracle, *args, **kw):
            self.oracle = oracle
            base.__init__(self, *args, **kw)

        def _evict_oldest(self):
            first, last = self._segs[1], self._segs[2]   # the oldest segment (agent/journal.py FIRST, LAST)
            if last > self.acked:
                self.oracle.evicted.append((max(first, self.acked + 1), last))
            base._evict_oldest(self)

    return Watched


Watched = watched(Journal)


class Oracle:
    def __init__(self):
        self.returned = {}   # id -> [kind, name, value] of every append that returned
        self.maybe = {}      # id -> [candidates] written by a call the power cut
        self.top = 0         # the highest id that must never be handed out again
        self.acked = 0       # the highest id an ack was asked for (the call may have been cut)
        self.floor = 0       # the cursor a completed cursor write put on flash
        self.evicted = []    # (first, last) of every eviction of unacknowledged records
        self.noticed = []    # (first, last) of every journal_evicted notice read
        self.problems = []   # (kind, text)
        self.counts = {"appends": 0, "acks": 0, "reads": 0, "boots": 0, "cuts": 0,
                       "reopens": 0, "evictions": 0, "notices": 0, "promoted": 0}

    def problem(self, kind, text):
        self.problems.append((kind, text))

    # -- what the records must be -------------------------------------------
    def _notice_ok(self, rec):
        v = rec[4]
        if rec[2] != "event" or rec[3] != NOTICE or not isinstance(v, dict):
            return False
        firsts = [e[0] for e in self.evicted]
        lasts = [e[1] for e in self.evicted]
        if v.get("first_id") not in firsts or v.get("last_id") not in lasts or v.get("count", 0) < 1:
            return False
        if (v["first_id"], v["last_id"]) not in self.noticed:
            self.noticed.append((v["first_id"], v["last_id"]))
            self.counts["notices"] += 1
        return True

    def _matches(self, want, rec):
        if want is WILD:
            return self._notice_ok(rec)
        return want == [rec[2], rec[3], rec[4]]

    def _check_records(self, recs, cursor, where):
        prev = cursor
        for rec in recs:
            rid = rec[0]
            if rid <= prev:
                self.problem("order", "%s: id %d after %d" % (where, rid, prev))
            prev = rid
            if rid in self.returned:
                if not self._matches(self.returned[rid], rec):
                    self.problem("from_nowhere", "%s: record %d is %r, its append wrote %r"
                                 % (where, rid, rec[2:], self.returned[rid]))
            elif rid in self.maybe:
                if not any(self._matches(c, rec) for c in self.maybe[rid]):
                    self.problem("from_nowhere", "%s: record %d is %r, no append wrote that" % (where, rid, rec[2:]))
            else:
                self.problem("from_nowhere", "%s: record %d (%r) was never written" % (where, rid, rec[2:]))

    def _covered(self, rid, ranges):
        for first, last in ranges:
            if first <= rid <= last:
                return True
        return False

    # -- the calls ----------------------------------------------------------
    def begin_append(self, j, items):
        """Before an append call: its records are in doubt until it returns."""
        n0 = j.next_id
        for i, item in enumerate(items):
            self.maybe.setdefault(n0 + i, []).append(item)
        self.maybe.setdefault(n0 + len(items), []).append(WILD)  # an eviction notice after them
        return n0

    def appended(self, j, ids, items):
        for i, rid in enumerate(ids):
            item = items[i]
            if rid <= self.top:
                self.problem("id_reused", "append returned id %d, not above %d" % (rid, self.top))
            self.returned[rid] = item
            self.top = max(self.top, rid)
            self.maybe.pop(rid, None)
        self.counts["appends"] += len(ids)
        if ids and j.next_id - 1 > ids[-1]:
            # The journal added its eviction notice to the batch (synced with it).
            self.returned[j.next_id - 1] = WILD
            self.top = j.next_id - 1
        self.maybe = {}

    def cursor_written(self, j, writes_before):
        if j.stats["cursor_writes"] != writes_before:
            self.floor = max(self.floor, j.acked)

    # -- a boot: a new journal over what survived ----------------------------
    def boot(self, j, where):
        """Check the journal `j` just opened over what the flash holds."""
        self.counts["boots"] += 1
        cursor = j.acked
        hi = self.acked
        for e in self.evicted:
            hi = max(hi, e[1])
        if cursor > hi:
            self.problem("cursor_ahead", "%s: cursor %d, acknowledged %d (evicted up to %d)"
                         % (where, cursor, self.acked, hi))
        if cursor < self.floor:
            self.problem("cursor_back", "%s: cursor %d, a completed cursor write had put %d"
                         % (where, cursor, self.floor))
        recs = j.read(limit=1 << 20)
        self._check_records(recs, cursor, where)
        got = {}
        for rec in recs:
            got[rec[0]] = True
        noticed = self.noticed
        armed = getattr(j, "_evict_notice", None)
        if armed:
            # A notice the journal recovered and will write with its next
            # append is as good as one on flash.
            noticed = noticed + [(armed[1], armed[2])]
        for rid in sorted(self.returned):
            if rid in got or rid <= self.acked:
                continue
            if self._covered(rid, self.evicted):
                if not self._covered(rid, noticed):
                    self.problem("silent_eviction", "%s: record %d evicted, no journal_evicted notice covers it"
                                 % (where, rid))
            else:
                self.problem("lost", "%s: record %d (%r) lost (cursor %d, acknowledged %d)"
                             % (where, rid, self.returned[rid], cursor, self.acked))
        for rec in recs:
            rid = rec[0]
            if rid not in self.returned and rid in self.maybe:
                # Written by the call the power cut, and on flash: it is a
                # record now, to be sent like any other.
                self.returned[rid] = WILD if rec[3] == NOTICE else [rec[2], rec[3], rec[4]]
                self.top = max(self.top, rid)
                self.counts["promoted"] += 1
        self.maybe = {}
        if j.next_id <= self.top:
            self.problem("id_reused", "%s: next id %d, but %d was handed out" % (where, j.next_id, self.top))
        gone = min(cursor, self.acked)
        for rid in [r for r in self.returned if r <= gone]:
            del self.returned[rid]


def run(j, oracle, rand, steps, alive, reopen):
    """`steps` random operations on the journal `j` (its counterpart in the
    oracle), until the power fails: alive() turns false. `reopen()` opens
    the journal again (a clean restart). Returns the last journal open, or
    raises Cut (the journal is dead then; its calls were in doubt)."""
    o = oracle
    k = 0
    for _ in range(steps):
        r = rand(100)
        try:
            if r < 65:
                items = []
                for _ in range(1 if r < 50 else 2 + rand(3)):
                    k += 1
                    items.append(["event", "punch", {"k": k, "pad": "x" * rand(80)}])
                o.begin_append(j, items)
                writes = j.stats["cursor_writes"]
                evictions = len(o.evicted)
                if len(items) == 1:
                    ids = [j.append(items[0][0], items[0][1], items[0][2])]
                else:
                    ids = j.append_many([(kind, name, value, None) for kind, name, value in items])
                if not alive():
                    raise Cut()
                o.appended(j, ids, items)
                o.cursor_written(j, writes)
                o.counts["evictions"] += len(o.evicted) - evictions
            elif r < 88:
                cursor = j.acked
                recs = j.read(limit=1 + rand(16))
                if not alive():
                    raise Cut()
                o.counts["reads"] += 1
                o._check_records(recs, cursor, "read")
                if recs and rand(5):
                    upto = recs[rand(len(recs))][0]
                    o.acked = max(o.acked, upto)
                    writes = j.stats["cursor_writes"]
                    j.ack(upto)
                    if not alive():
                        raise Cut()
                    o.counts["acks"] += 1
                    o.cursor_written(j, writes)
            elif r < 96:
                writes = j.stats["cursor_writes"]
                j.flush_cursor()
                if not alive():
                    raise Cut()
                o.cursor_written(j, writes)
            else:
                j.close()
                if not alive():
                    raise Cut()
                o.floor = max(o.floor, j.acked)
                j = reopen()
                if not alive():
                    raise Cut()
                o.counts["reopens"] += 1
                o.boot(j, "reopen")
        except Cut:
            o.counts["cuts"] += 1
            raise
        except BaseException:  # a power cut shows as whatever the call raised
            if alive():
                raise
            o.counts["cuts"] += 1
            raise Cut() from None
    return j


def count_session(totals, dev, early):
    """What a NorFlash saw in one powered session (`early`: the boot after
    a cut), added to a trial loop's `totals`."""
    totals["overwrites"] += dev.overwrites
    totals["erase_cuts"] += dev.cut_in == "erase"
    totals["program_cuts"] += dev.cut_in == "program"
    totals["second_cuts"] += early and dev.cut_in is not None
    totals["erases"] += dev.erases


def count_trial(totals, o):
    """What the oracle `o` counted over a trial, added to `totals`."""
    for k in ("appends", "boots", "evictions", "notices", "reopens"):
        totals[k] += o.counts[k]


TALLIES = ("overwrites", "erase_cuts", "program_cuts", "second_cuts", "erases",
           "appends", "boots", "evictions", "notices", "reopens")


def run_trials(trial, count, more=()):
    """`trial(seed, totals)` for seeds 0..count-1: (totals, {problem kind:
    ["seed N: what", ...]})."""
    totals = {}
    for k in TALLIES + tuple(more):
        totals[k] = 0
    found = {}
    for seed in range(count):
        for kind, text in trial(seed, totals):
            found.setdefault(kind, []).append("seed %d: %s" % (seed, text))
    return totals, found


def clean_cuts(totals, found):
    """Fails on any problem the trials found (five of each kind shown) and
    on any program over cells not erased; returns the power cuts made."""
    problems = {}
    for kind in found:
        problems[kind] = found[kind][:5]
    assert not problems, problems
    assert totals["overwrites"] == 0, "%d programs over cells not erased" % totals["overwrites"]
    return totals["erase_cuts"] + totals["program_cuts"]
