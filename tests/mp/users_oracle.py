# The user store's promises under power cuts, checked from outside, for the
# crash tests of both runtimes: tests/mp/test_users_powercut.py (LittleFS
# on NOR flash, inside MicroPython) and tests/host/test_users_crash.py (the
# Pi's file system that forgets whatever was not fsynced). Plain Python
# that MicroPython runs too; the host test loads it by its path.
#
# A machine holds the OLD users (a full sync and a few changes). Then a
# full sync to the NEW users, its commit, and PUTS more users one by one
# (enough to fold the change log into a new base at least once), with the
# power cut somewhere. After the reboot the store must be the old one or
# the new one, never a mix: every user of the one it is found by id, card
# and PIN, none of the other; a sync whose commit returned is the new one;
# every put that returned is there.
OLD = 30
NEW = 45
PUTS = 70


def old_users():
    return [{"id": "a%03d" % i, "cards": [1000 + i], "pin": "%04d" % (1000 + i)} for i in range(OLD)]


def new_users():
    return [{"id": "b%03d" % i, "cards": [5000 + i], "pin": "%04d" % (5000 + i)} for i in range(NEW)]


def put_user(i):
    return {"id": "p%03d" % i, "cards": [8000 + i]}


def setup(store):
    """The machine before the trial, powered throughout."""
    store.sync_begin()
    users = old_users()
    store.sync_add(users[:20])
    store.sync_add(users[20:])
    store.sync_commit()
    for i in range(3):
        store.put({"id": "d%d" % i, "cards": [3000 + i]})


def workload(store, done):
    """What the cut lands in; `done` records what returned."""
    store.sync_begin()
    users = new_users()
    for p in range(0, NEW, 20):
        store.sync_add(users[p:p + 20])
    store.sync_commit()
    done.append("commit")
    for i in range(PUTS):
        store.put(put_user(i))
        done.append(i)


def _ids(recs):
    return [r[0] for r in recs]


def check(store, done):
    """Problems found after a reboot, as text; [] when the store kept its promises."""
    problems = []
    new = store.get("b000") is not None
    if "commit" in done and not new:
        return ["the sync's commit returned, but the old users came back"]
    if new:
        want = [u["id"] for u in new_users()]
        gone = [u["id"] for u in old_users()] + ["d0", "d1", "d2"]
        users = new_users()
        returned = [i for i in done if i != "commit"]
        in_flight = (returned[-1] + 1) if returned else 0
        for i in returned:
            if _ids(store.by_card(8000 + i)) != ["p%03d" % i]:
                problems.append("put p%03d returned, then was lost" % i)
        want += ["p%03d" % i for i in returned]
        maybe = "p%03d" % in_flight if in_flight < PUTS else None
    else:
        want = [u["id"] for u in old_users()] + ["d0", "d1", "d2"]
        gone = [u["id"] for u in new_users()]
        users = old_users()
        maybe = None
        for i in range(3):
            if _ids(store.by_card(3000 + i)) != ["d%d" % i]:
                problems.append("old change d%d lost" % i)
    for u in users:
        if _ids(store.by_card(u["cards"][0])) != [u["id"]] or _ids(store.by_pin(u["pin"])) != [u["id"]]:
            problems.append("user %s not found by card and PIN" % u["id"])
    for uid in gone:
        if store.get(uid) is not None:
            problems.append("user %s of the other store is there too (a mix)" % uid)
    listed = []
    after = None
    for _ in range(100):
        recs, more = store.page(after, 25)
        listed += _ids(recs)
        if not more:
            break
        after = recs[-1][0]
    extra = [x for x in listed if x not in want and x != maybe]
    missing = [x for x in want if x not in listed]
    if extra or missing or len(set(listed)) != len(listed):
        problems.append("listing: %d extra %r, %d missing %r" % (len(extra), extra[:3], len(missing), missing[:3]))
    if store.count() != len(listed):
        problems.append("count %d, but %d listed" % (store.count(), len(listed)))
    return problems
