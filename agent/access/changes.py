# Changes to the user store (agent/access/users.py): put, delete, folds of
# the change log, clear, full sync, and the paging of user_list - the
# cloud's side of the store, loaded with the first change or listing
# rather than at start (on MicroPython code takes heap: a board that only
# decides pays for what decides). Functions of the store `s`.
#
# What takes long (a fold of 10,000 users, a full sync's commit) comes as
# steps too (folding, committing, sync_adding: generators, see
# agent/access/build.py), which the user commands run letting the doors
# poll between them; the plain functions run them straight through.
#
# A full sync owns the build files until it is committed, so while one is
# open no change is taken (a commit would drop it: the new base replaces
# the change log) and none is folded. A sync with no page for SYNC_IDLE_MS
# (a cloud that went away mid-sync) is abandoned at the next user command,
# and a new `begin` abandons an open one: an unfinished sync never holds
# changes - revocations - back for long.
import os

from agent import hal, log
from agent.access import index
from agent.access import record as R
from agent.access.basefile import DELTA, DELTA_MAX, DELTA_TABLE, DELTA_TMP, DENTRY, MAX_KEYS, new_generation
from agent.access.build import Builder, Work, drain
from agent.access.check import check, scalar
from agent.codecs import cbor
from agent.codecs import user_fields as uf
from agent.hal import sync_dir, sync_file
from agent.journal import frame

BATCH = 4               # records carried at a time when a base is rebuilt (each is a few hundred bytes of RAM)
SYNC_IDLE_MS = 120000   # an open full sync with no page for this long is abandoned
now_ms = hal.ticks_ms   # the sync's clock (a test's own)


def work(s):
    """The store's build.Work: made with its first build, kept for the next."""
    if s._work is None:
        s._work = Work()
    return s._work


def install(s, builder):
    drain(installing(s, builder))


def installing(s, builder):
    """Steps: make the builder's base the store (the delta goes with the
    old one). The old base answers lookups until the last step, which
    swaps the two without yielding."""
    gen = new_generation(s.gen)
    try:
        yield from builder.finishing(gen)
    except BaseException:
        builder.discard()
        raise
    if s._f is not None:
        s._f.close()   # a file open under a rename is not every file system's friend
        s._f = None
    try:
        builder.rename()
    except BaseException:
        try:
            builder.discard()
            s._open_base()   # the old base stands
        except OSError as e:
            # The flash fails under us: the next lookup tries again (_base).
            log.count("user_store_errors")
            log.error("users", "the user store cannot be reopened: %s" % e)
        raise
    s._open_base()
    s._drop_delta()


def _append(s, uid, rec):
    data = frame(cbor.encode([s.gen, uid, rec]))
    created = s._dsize == 0
    off = s._dsize
    with open(s._p(DELTA), "ab") as f:
        f.write(data)
        sync_file(f)
    if created:
        sync_dir(s.folder)
    s._index_delta(uid, rec, off)
    s._dsize = off + len(data)


def keep_delta_prefix(s, good):
    # Appending behind garbage would hide every later change: the valid
    # frames are copied to a new log that replaces the old one.
    with open(s._p(DELTA), "rb") as src, open(s._p(DELTA_TMP), "wb") as dst:
        left = good
        while left:
            chunk = src.read(min(left, 512))
            dst.write(chunk)
            left -= len(chunk)
        sync_file(dst)
    os.rename(s._p(DELTA_TMP), s._p(DELTA))
    sync_dir(s.folder)


def page(s, after=None, n=R.PAGE):
    """([records], more): up to n users in the store's order (by a hash
    of the id: stable, not alphabetical), from after the id `after`."""
    ak = R.id_key(s.salt, after) if after is not None else None
    cands = []   # the delta's live users after `ak`, in key order
    for off in s._dhits_all_ids():
        d = s._dread(off)
        if d is None or d[2] is None:
            continue
        k = R.id_key(s.salt, d[1])
        latest = s._latest(d[1])
        if latest[0] == off and (ak is None or k > ak):
            cands.append((k, off))
    cands.sort()
    start, count = s._regions[0]
    f = s._base()
    pos = 0 if ak is None else index.after(f, start, count, ak, s._buf)
    out = []
    i = 0
    while len(out) <= n:
        bkey = None
        if pos < count:
            f.seek(start + pos * index.ENTRY)
            f.readinto(s._buf)
            bkey = bytes(s._buf[:R.KEY])
        if i < len(cands) and (bkey is None or cands[i][0] < bkey):
            out.append(s._dread(cands[i][1])[2])
            i += 1
            continue
        if bkey is None:
            break
        pos += 1
        rec = s._base_rec(index.offset_of(s._buf))
        if rec is not None and s._latest(rec[R.ID]) is None:
            out.append(rec)
    more = len(out) > n
    return out[:n], more


def put(s, user, fold=True):
    """Add or update a user (the cloud's dict, merged over the stored
    one); durable when it returns. ValueError says what is wrong. `fold`
    False: a fold that falls due is left to folding()."""
    if isinstance(user, dict) and "id" in user:
        old = s.get(uf.user_id(scalar(user["id"], "id"), "id"))
    else:
        old = None
    rec = check(user, s.salt, old)
    uid = rec[R.ID]
    if old is None and s._count >= s.max_users:
        raise ValueError("the store is full: it holds max_users (%d) users" % s.max_users)
    for c in rec[R.CARDS]:
        for other in s.by_card(c):
            if other[R.ID] != uid:
                raise ValueError("card %d already belongs to user %s" % (c, other[R.ID]))
    if rec[R.FP] is not None:
        for other in s.by_fp(rec[R.FP]):
            if other[R.ID] != uid:
                raise ValueError("fingerprint page %d already belongs to user %s" % (rec[R.FP], other[R.ID]))
    _change(s, uid, rec, 1 if old is None else 0, fold)
    return rec


def delete(s, uid, fold=True):
    """Remove a user; False when there was none."""
    if s.get(uid) is None:
        return False
    _change(s, uid, None, -1, fold)
    return True


def _change(s, uid, rec, grows, fold):
    b = open_sync(s)
    if b is not None:
        raise ValueError("a full sync is open (%d users received, the last page %d s ago): no change is "
                         "taken until it is committed, or abandoned %d s after its last page"
                         % (b.users, hal.ticks_diff(now_ms(), b.touched) // 1000, SYNC_IDLE_MS // 1000))
    if s._dused + MAX_KEYS * DENTRY > DELTA_TABLE:
        raise ValueError("the user store cannot take more changes: folding them into a new base "
                         "keeps failing (is the flash full?)")
    _append(s, uid, rec)
    s._count += grows
    if fold:
        drain(folding(s))


def folding(s):
    """Steps: fold the delta into a new base if it is due. A fold that
    fails is logged and counted: the changes are stored, and the next
    change tries again."""
    if (s._dn >= DELTA_MAX or s._dused + MAX_KEYS * DENTRY > DELTA_TABLE) and s._sync is None:
        try:
            yield from compacting(s)
        except OSError as e:
            log.count("users_compact_failed")
            log.warn("users", "could not fold the change log into a new base: %s" % e)


def compact(s):
    """Fold the delta into a new base (every live user, once)."""
    drain(compacting(s))


def compacting(s):
    b = Builder(s.folder, s.salt, work(s))
    batch = []
    start, count = s._regions[0]
    for pos in range(count):
        # A step per user. Lookups share the base file and its buffer: each
        # step seeks and reads for itself, and holds neither across a yield.
        f = s._base()
        f.seek(start + pos * index.ENTRY)
        f.readinto(s._buf)
        rec = s._base_rec(index.offset_of(s._buf))
        if rec is not None and s._latest(rec[R.ID]) is None:
            batch = yield from _carry(b, batch, rec)
        yield
    for off in s._dhits_all_ids():
        d = s._dread(off)
        if d is not None and d[2] is not None and s._latest(d[1])[0] == off:
            batch = yield from _carry(b, batch, d[2])
    if batch:
        yield from b.adding(batch)
    yield from installing(s, b)


def clear(s):
    sync_abort(s)
    install(s, Builder(s.folder, s.salt, work(s)))


def open_sync(s):
    """The open full sync's builder, or None; one idle for SYNC_IDLE_MS is
    abandoned here (logged, counted)."""
    b = s._sync
    if b is not None and hal.ticks_diff(now_ms(), b.touched) >= SYNC_IDLE_MS:
        log.count("users_sync_abandoned")
        log.warn("users", "a full sync had no page for %d s (%d users received): abandoned, the store "
                          "stays as it was" % (SYNC_IDLE_MS // 1000, b.users))
        sync_abort(s)
        b = None
    return b


def sync_begin(s):
    """Start a full sync: the users sent until sync_commit() become the
    store; until then the old one answers (a restart forgets the sync).
    A sync still open is abandoned: this one replaces it."""
    if open_sync(s) is not None:
        log.count("users_sync_abandoned")
        log.warn("users", "a new full sync begins before the last one was committed (%d users received): "
                          "that one is abandoned" % s._sync.users)
        sync_abort(s)
    s._sync = Builder(s.folder, s.salt, work(s))
    s._sync.touched = now_ms()


def _no_sync():
    return ValueError("no full sync is open: begin one first (one with no page for %d s is abandoned)"
                      % (SYNC_IDLE_MS // 1000))


def sync_add(s, users):
    """A page of users, all checked before any is kept."""
    return drain(sync_adding(s, users))


def sync_adding(s, users):
    """Steps: sync_add."""
    b = open_sync(s)
    if b is None:
        raise _no_sync()
    if not isinstance(users, list) or len(users) > R.PAGE:
        raise ValueError("a sync page is a list of at most %d users" % R.PAGE)
    if b.users + len(users) > s.max_users:
        raise ValueError("the sync holds more than max_users (%d) users" % s.max_users)
    b.touched = now_ms()
    for u in users:
        check(u, s.salt)   # the whole page is refused before any of it is kept
        yield
    yield from b.adding(users, check)
    b.touched = now_ms()
    return b.users


def sync_commit(s):
    return drain(committing(s))


def committing(s):
    """Steps: sync_commit -> the users in the store."""
    if open_sync(s) is None:
        raise _no_sync()
    b, s._sync = s._sync, None
    yield from installing(s, b)
    return s.users


def sync_abort(s):
    if s._sync is not None:
        s._sync.discard()
        s._sync = None


def _carry(builder, batch, rec):
    batch.append(rec)
    if len(batch) >= BATCH:
        yield from builder.adding(batch)
        return []
    return batch
