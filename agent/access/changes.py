# Changes to the user store (agent/access/users.py): put, delete, folds of
# the change log, clear, full sync, and the paging of user_list - the
# cloud's side of the store, loaded with the first change or listing
# rather than at start (on MicroPython code takes heap: a board that only
# decides pays for what decides). Functions of the store `s`.
import os

from agent import log
from agent.access import index
from agent.access import record as R
from agent.access.build import Builder, Work, new_generation
from agent.access.check import check, scalar
from agent.access.users import DELTA, DELTA_MAX, DELTA_TABLE, DELTA_TMP, DENTRY, MAX_KEYS
from agent.codecs import cbor
from agent.codecs import user_fields as uf
from agent.hal import sync_dir, sync_file
from agent.journal import frame

BATCH = 4               # records carried at a time when a base is rebuilt (each is a few hundred bytes of RAM)


def work(s):
    """The store's build.Work: made with its first build, kept for the next."""
    if s._work is None:
        s._work = Work()
    return s._work


def install(s, builder):
    """Make the builder's base the store (the delta goes with the old one)."""
    gen = new_generation(s.gen)
    if s._f is not None:
        s._f.close()   # a file open under a rename is not every file system's friend
        s._f = None
    try:
        builder.finish(gen)
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
    try:
        os.remove(s._p(DELTA))
    except OSError:
        pass   # there was none
    s._reset_delta()
    s._count = s.users


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


def put(s, user):
    """Add or update a user (the cloud's dict, merged over the stored
    one); durable when it returns. ValueError says what is wrong."""
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
    _change(s, uid, rec, 1 if old is None else 0)
    return rec


def delete(s, uid):
    """Remove a user; False when there was none."""
    if s.get(uid) is None:
        return False
    _change(s, uid, None, -1)
    return True


def _change(s, uid, rec, grows):
    if s._dused + MAX_KEYS * DENTRY > DELTA_TABLE:
        raise ValueError("the user store cannot take more changes: folding them into a new base "
                         "keeps failing (is the flash full?)")
    _append(s, uid, rec)
    s._count += grows
    # While a full sync is open its build owns the build files; its
    # commit replaces the delta anyway.
    if (s._dn >= DELTA_MAX or s._dused + MAX_KEYS * DENTRY > DELTA_TABLE) and s._sync is None:
        try:
            compact(s)
        except OSError as e:
            # The change itself is stored; folding is retried on the next one.
            log.count("users_compact_failed")
            log.warn("users", "could not fold the change log into a new base: %s" % e)


def compact(s):
    """Fold the delta into a new base (every live user, once)."""
    b = Builder(s.folder, s.salt, work(s))
    batch = []
    start, count = s._regions[0]
    f = s._base()
    for pos in range(count):
        f.seek(start + pos * index.ENTRY)
        f.readinto(s._buf)
        rec = s._base_rec(index.offset_of(s._buf))
        if rec is not None and s._latest(rec[R.ID]) is None:
            batch = _carry(b, batch, rec)
    for off in s._dhits_all_ids():
        d = s._dread(off)
        if d is not None and d[2] is not None and s._latest(d[1])[0] == off:
            batch = _carry(b, batch, d[2])
    if batch:
        b.add(batch)
    install(s, b)


def clear(s):
    sync_abort(s)
    install(s, Builder(s.folder, s.salt, work(s)))


def sync_begin(s):
    """Start a full sync: the users sent until sync_commit() become the
    store; until then the old one answers (a restart forgets the sync)."""
    s._sync = Builder(s.folder, s.salt, work(s))


def sync_add(s, users):
    """A page of users, all checked before any is kept."""
    if s._sync is None:
        raise ValueError("no full sync is open: begin one first")
    if not isinstance(users, list) or len(users) > R.PAGE:
        raise ValueError("a sync page is a list of at most %d users" % R.PAGE)
    if s._sync.users + len(users) > s.max_users:
        raise ValueError("the sync holds more than max_users (%d) users" % s.max_users)
    for u in users:
        check(u, s.salt)   # the whole page is refused before any of it is kept
    s._sync.add(users, check)
    return s._sync.users


def sync_commit(s):
    if s._sync is None:
        raise ValueError("no full sync is open: begin one first")
    b, s._sync = s._sync, None
    install(s, b)
    return s.users


def sync_abort(s):
    if s._sync is not None:
        s._sync.discard()
        s._sync = None


def _carry(builder, batch, rec):
    batch.append(rec)
    if len(batch) >= BATCH:
        builder.add(batch)
        return []
    return batch
