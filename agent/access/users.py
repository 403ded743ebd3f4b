# The user store on flash (docs/door-controller.md section 5): 10,000 users
# found by id, card, PIN or fingerprint page in a few small reads, never
# all in RAM.
#
# A folder holds:
#   base    an immutable file of all users and their sorted indexes
#           (agent/access/basefile.py), replaced whole by a full sync or a
#           compaction: a power cut leaves the old base or the new one
#   delta   changes since the base (put, delete): an append-only log of
#           whole users and tombstones, each a CRC'd frame of CBOR
#           [generation, id, record | None], synced before put() returns.
#           Frames tagged with another base's generation are ignored (a
#           delta a power cut left behind a newer base), a torn tail is cut
#           off at the next start. In RAM only a table of 12-byte entries
#           (key, kind, offset) points into it; past DELTA_MAX changes it is
#           folded into a new base.
# Anything else with a name of the build's (base.tmp, stage.*) is what a
# power cut left of a build, removed at start.
#
# This module finds users; changing them (agent/access/changes.py) and
# building a base (agent/access/build.py) are loaded with the first change:
# on MicroPython code takes heap, and a board mostly just decides.
#
# A broken base (bit rot, a file nobody wrote whole) is reported, counted
# (users_store_bad), kept aside as base.bad and replaced by an empty store
# that the cloud's next sync fills: the agent runs on. A broken record is
# counted (users_bad_record) and read as absent.
import os

from agent import log
from agent.access import basefile as B
from agent.access import index
from agent.access import record as R

# The change log's layout is the store's file format, shared with changes.py.
from agent.access.basefile import DELTA, DELTA_MAX, DELTA_TABLE, DELTA_TMP, DENTRY, MAX_KEYS  # noqa: F401
from agent.codecs import cbor
from agent.hal import loaded, release_since, sync_dir, sync_file
from agent.journal import HEADER, mkdirs

BAD = "base.bad"


class UserStore:
    __slots__ = ("folder", "max_users", "salt", "gen", "users", "_f", "_rec_end", "_regions", "_buf",
                 "_dix", "_dused", "_dsize", "_dn", "_count", "_sync", "_work")

    def __init__(self, folder, max_users=10000):
        self.folder = folder
        self.max_users = max_users
        self._f = None
        self.gen = 0
        self._buf = bytearray(index.ENTRY)
        # Taken now, while the heap has room: the delta's table. A build's
        # buffers (build.Work) come with the first build and stay.
        self._dix = bytearray(DELTA_TABLE)
        self._work = None
        self._sync = None
        mkdirs(folder)
        # A build a power cut stopped, or a torn change log, loads the build
        # code (about 20 KB on MicroPython) to clear up: released again here,
        # to come back with the first user command that needs it.
        before = loaded()
        names = os.listdir(folder)
        if DELTA_TMP in names:
            os.remove(self._p(DELTA_TMP))   # a log being rewritten when the power went
        if B.BASE not in names:
            self._new_base()
        elif B.leftovers(names):
            from agent.access.build import discard
            discard(folder)
        names = None
        if self._f is None:
            self._open_base()
        self._load_delta()
        self._work = None
        # The names a full sync's code brings are made now, while the heap
        # is whole, and the code goes again: MicroPython keeps every name
        # for good, in tables that grow by doubling, and the table made for
        # the sync's names (about 15 KB at once) did not always find room
        # mid-sync (measured: 10,000 users at 352 KB, pages refused).
        from agent.access import changes  # noqa: F401
        release_since(before)

    def _p(self, name):
        return self.folder + "/" + name

    # -- the base ---------------------------------------------------------
    def _new_base(self):
        """An empty store, with this device's salt: made on the first start
        or when the base is lost. Written here, not by the build code: on
        MicroPython every name a module brings stays on the heap after the
        module goes, and the build's were enough to need a new table of
        names (about 15 KB) on a board that never gets a user command."""
        tmp = self._p(B.TMP)
        with open(tmp, "wb") as f:
            f.write(B.trailer(B.new_generation(self.gen), os.urandom(B.SALT), 0, 0, [(0, 0)] * len(R.KINDS)))
            sync_file(f)
        os.rename(tmp, self._p(B.BASE))
        sync_dir(self.folder)
        self._open_base()
        self._drop_delta()

    def _drop_delta(self):
        """A new base is the store: the change log went with the old one."""
        try:
            os.remove(self._p(DELTA))
        except OSError:
            pass   # there was none
        self._reset_delta()
        self._count = self.users

    def _open_base(self):
        f = open(self._p(B.BASE), "rb")
        try:
            self.gen, self.salt, self.users, self._rec_end, self._regions = B.read_trailer(f)
        except B.BadBase as e:
            f.close()
            log.count("users_store_bad")
            log.error("users", "the user store is unreadable (%s): kept as %s, starting empty until the "
                               "cloud syncs users again" % (e, BAD))
            os.rename(self._p(B.BASE), self._p(BAD))
            sync_dir(self.folder)
            self._new_base()
            return
        self._f = f

    def _base(self):
        """The open base file; reopened if a failed rebuild left it closed
        (OSError if it still cannot be)."""
        if self._f is None:
            self._open_base()
        return self._f

    def _base_rec(self, off):
        payload = B.read_frame(self._base(), off, self._rec_end) if off < self._rec_end else None
        rec = B.decode(payload) if payload is not None else None
        if rec is None:
            log.count("users_bad_record")
            log.warn("users", "a user record at %d is unreadable: read as absent" % off)
        return rec

    def _base_find(self, kind, key):
        start, count = self._regions[R.KINDS.index(kind)]
        return index.find(self._base(), start, count, key, self._buf)

    def _base_get(self, uid):
        for off in self._base_find(R.BY_ID, R.id_key(self.salt, uid)):
            rec = self._base_rec(off)
            if rec is not None and rec[R.ID] == uid:
                return rec
        return None

    # -- the delta --------------------------------------------------------
    def _reset_delta(self):
        self._dused = 0
        self._dsize = 0
        self._dn = 0

    def _load_delta(self):
        self._reset_delta()
        try:
            f = open(self._p(DELTA), "rb")
        except OSError:
            self._count = self.users
            return
        good = 0
        stale = False
        with f:
            f.seek(0, 2)
            size = f.tell()
            while good < size:
                payload = B.read_frame(f, good, size)
                d = _delta_decode(payload) if payload is not None else None
                if d is None:
                    break
                if d[0] != self.gen:
                    stale = True
                    break
                if self._dused + MAX_KEYS * DENTRY > DELTA_TABLE:
                    break   # more than this code ever writes: the rest is treated as torn
                self._index_delta(d[1], d[2], good)
                good += HEADER + len(payload)
        if stale:
            # Changes made on a base that a sync or compaction has since replaced.
            os.remove(self._p(DELTA))
            self._reset_delta()
        elif good < size:
            log.count("users_delta_torn")
            log.warn("users", "cut %d bytes of a torn change off the user store's log" % (size - good))
            from agent.access.changes import keep_delta_prefix
            keep_delta_prefix(self, good)
        self._dsize = good
        self._count = self._counted()

    def _index_delta(self, uid, rec, off):
        keys = R.keys(rec, self.salt) if rec is not None else [(R.BY_ID, R.id_key(self.salt, uid))]
        d = self._dix
        for kind, key in keys:
            at = self._dused
            d[at:at + R.KEY] = key
            d[at + R.KEY] = kind[0]
            d[at + R.KEY + 1:at + DENTRY] = off.to_bytes(3, "big")
            self._dused = at + DENTRY
        self._dn += 1

    def _dhits(self, kind, key):
        """Offsets in the delta of the entries with `key` of `kind`, oldest first."""
        d = self._dix
        end = self._dused
        i = d.find(key, 0, end)
        while i >= 0:
            if i % DENTRY == 0 and d[i + R.KEY] == kind[0]:
                yield int.from_bytes(d[i + R.KEY + 1:i + DENTRY], "big")
            i = d.find(key, i + 1, end)

    def _dread(self, off):
        with open(self._p(DELTA), "rb") as f:
            payload = B.read_frame(f, off, off + HEADER + B.MAX_RECORD + 64)
        d = _delta_decode(payload) if payload is not None else None
        if d is None:
            log.count("users_bad_record")
        return d

    def _latest(self, uid):
        """(offset, record or None) of the delta's last word on `uid`, or None."""
        found = None
        for off in self._dhits(R.BY_ID, R.id_key(self.salt, uid)):
            d = self._dread(off)
            if d is not None and d[1] == uid:
                found = (off, d[2])
        return found

    def _counted(self):
        n = self.users
        seen = []
        for off in self._dhits_all_ids():
            d = self._dread(off)
            if d is None or d[1] in seen:
                continue
            seen.append(d[1])
            latest = self._latest(d[1])
            in_base = self._base_get(d[1]) is not None
            if latest[1] is None and in_base:
                n -= 1
            elif latest[1] is not None and not in_base:
                n += 1
        return n

    def _dhits_all_ids(self):
        d = self._dix
        for i in range(0, self._dused, DENTRY):
            if d[i + R.KEY] == R.BY_ID[0]:
                yield int.from_bytes(d[i + R.KEY + 1:i + DENTRY], "big")

    # -- lookups ----------------------------------------------------------
    def get(self, uid):
        """The user record with this id, or None."""
        latest = self._latest(uid)
        if latest is not None:
            return latest[1]
        return self._base_get(uid)

    def _find(self, kind, key, match, limit=2):
        """Up to `limit` live records found under `key` that `match`."""
        out = []
        for off in self._dhits(kind, key):
            d = self._dread(off)
            if d is None or d[2] is None or not match(d[2]):
                continue
            latest = self._latest(d[1])
            if latest is not None and latest[0] == off:
                out.append(d[2])
                if len(out) >= limit:
                    return out
        for off in self._base_find(kind, key):
            rec = self._base_rec(off)
            if rec is None or not match(rec) or self._latest(rec[R.ID]) is not None:
                continue
            out.append(rec)
            if len(out) >= limit:
                break
        return out

    def by_card(self, card):
        """Users holding this card: [] unknown, one, or two (ambiguous)."""
        return self._find(R.BY_CARD, R.card_key(self.salt, card), lambda r: card in r[R.CARDS])

    def by_pin(self, pin):
        """Users with this PIN: [] unknown, one, or two (shared: ambiguous
        where the PIN alone must name a user)."""
        h = R.pin_hash(self.salt, pin)
        return self._find(R.BY_PIN, h[:R.KEY], lambda r: r[R.PIN] == h)

    def by_fp(self, page):
        return self._find(R.BY_FP, R.fp_key(self.salt, page), lambda r: r[R.FP] == page)

    def pin_matches(self, rec, pin):
        return rec[R.PIN] is not None and rec[R.PIN] == R.pin_hash(self.salt, pin)

    def count(self):
        return self._count

    # -- changes: agent/access/changes.py, loaded with the first ----------
    def put(self, user):
        """Add or update a user (the cloud's dict, merged over the stored
        one); durable when it returns. ValueError says what is wrong."""
        from agent.access.changes import put
        return put(self, user)

    def delete(self, uid):
        """Remove a user; False when there was none."""
        from agent.access.changes import delete
        return delete(self, uid)

    def page(self, after=None, n=R.PAGE):
        """([records], more): up to n users in the store's order (by a hash
        of the id: stable, not alphabetical), from after the id `after`."""
        from agent.access.changes import page
        return page(self, after, n)

    def compact(self):
        """Fold the change log into a new base."""
        from agent.access.changes import compact
        compact(self)

    def clear(self):
        from agent.access.changes import clear
        clear(self)

    def sync_begin(self):
        """Start a full sync: the users sent until sync_commit() become the
        store; until then the old one answers (a restart forgets the sync)."""
        from agent.access.changes import sync_begin
        sync_begin(self)

    def sync_add(self, users):
        """A page of users, all checked before any is kept; -> users so far."""
        from agent.access.changes import sync_add
        return sync_add(self, users)

    def sync_commit(self):
        """-> the users in the store now."""
        from agent.access.changes import sync_commit
        return sync_commit(self)

    def sync_abort(self):
        from agent.access.changes import sync_abort
        sync_abort(self)

def _delta_decode(payload):
    try:
        d = cbor.decode(payload)
    except ValueError:
        return None
    if not isinstance(d, list) or len(d) != 3 or not isinstance(d[1], str):
        return None
    if d[2] is not None and not R.readable(d[2]):
        return None
    return d

