# The user store on both runtimes: users found by id, card, PIN and
# fingerprint page, changes durable when put() returns (a new store object
# over the same folder is the next boot), a full sync that replaces the
# whole store, and a change log folded into a new base without losing or
# reviving anyone.
import os

from agent import log
from agent.access import users as U
from agent.access.record import public
from agent.access.users import UserStore

from support import raises, tmpdir


def store(max_users=10000):
    return UserStore(tmpdir() + "/users/dev-1", max_users)


def reboot(s):
    return UserStore(s.folder, s.max_users)


def ids(recs):
    return sorted(r[0] for r in recs)


def everyone(s, page=7):
    out, after = [], None
    for _ in range(10000):
        recs, more = s.page(after, page)
        out.extend(r[0] for r in recs)
        if not more:
            return out
        after = recs[-1][0]
    raise AssertionError("paging never ended")


def test_a_user_is_found_by_id_card_pin_and_fingerprint_after_a_reboot():
    s = store()
    s.put({"id": "u1", "name": "Ann", "cards": [123456, 99], "pin": "4321", "fp": 7})
    s = reboot(s)
    assert s.get("u1")[1] == "Ann"
    assert ids(s.by_card(99)) == ["u1"] and ids(s.by_card(123456)) == ["u1"]
    assert ids(s.by_pin("4321")) == ["u1"] and s.by_pin("1234") == []
    assert ids(s.by_fp(7)) == ["u1"] and s.by_fp(8) == []
    assert s.by_card(100) == [] and s.get("u2") is None
    assert s.count() == 1


def test_user_set_merges_absent_keeps_null_removes():
    s = store()
    s.put({"id": "u1", "name": "Ann", "cards": [5], "pin": "1111", "until": 1900000000})
    s.put({"id": "u1", "name": "Anne"})
    u = public(s.get("u1"))
    assert u["name"] == "Anne" and u["cards"] == [5] and u["pin"] is True and u["until"] == 1900000000
    s.put({"id": "u1", "until": None, "cards": [], "pin": True})   # true: an answer's PIN sent back keeps it
    u = public(reboot(s).get("u1"))
    assert "until" not in u and u["cards"] == [] and u["pin"] is True
    s.put({"id": "u1", "pin": None})
    assert "pin" not in public(s.get("u1")) and s.by_pin("1111") == []


def test_an_answer_never_holds_the_pin_and_the_flash_never_holds_it_in_clear():
    s = store()
    s.put({"id": "u1", "pin": "98765432"})
    u = public(s.get("u1"))
    assert u["pin"] is True and "98765432" not in repr(u)
    s.compact()
    for name in os.listdir(s.folder):
        with open(s.folder + "/" + name, "rb") as f:
            assert b"98765432" not in f.read(), name


def test_a_card_belongs_to_one_user():
    s = store()
    s.put({"id": "u1", "cards": [5]})
    e = raises(ValueError, s.put, {"id": "u2", "cards": [6, 5]})
    assert "card 5 already belongs to user u1" in str(e)
    assert s.get("u2") is None and s.count() == 1
    s.put({"id": "u1", "cards": [5, 6]})   # the same user may keep it
    s.delete("u1")
    s.put({"id": "u2", "cards": [5]})       # free again once its holder is gone
    assert ids(s.by_card(5)) == ["u2"]


def test_a_deleted_user_stays_deleted_after_a_reboot_and_a_fold():
    s = store()
    for i in range(5):
        s.put({"id": "u%d" % i, "cards": [i + 1]})
    assert s.delete("u2") is True and s.delete("u2") is False and s.delete("nobody") is False
    s = reboot(s)
    assert s.get("u2") is None and s.by_card(3) == [] and s.count() == 4
    s.compact()
    s = reboot(s)
    assert s.get("u2") is None and s.by_card(3) == [] and s.count() == 4
    assert sorted(everyone(s)) == ["u0", "u1", "u3", "u4"]


def test_many_changes_are_folded_into_a_new_base_with_every_user_once():
    s = store()
    n = U.DELTA_MAX * 3 + 5
    for i in range(n):
        s.put({"id": "u%03d" % i, "cards": [1000 + i], "pin": "%04d" % i})
    for i in range(0, n, 3):
        s.put({"id": "u%03d" % i, "name": "again"})    # updates, some after a fold
    for i in range(0, n, 5):
        s.delete("u%03d" % i)
    s = reboot(s)
    gone = set("u%03d" % i for i in range(0, n, 5))
    want = sorted("u%03d" % i for i in range(n) if "u%03d" % i not in gone)
    assert s.count() == len(want)
    assert sorted(everyone(s)) == want
    for i in range(n):
        uid = "u%03d" % i
        assert ids(s.by_card(1000 + i)) == ([] if uid in gone else [uid])
        if uid not in gone:
            assert s.get(uid)[1] == ("again" if i % 3 == 0 else "")
            assert ids(s.by_pin("%04d" % i)) == [uid]
    assert s._dn < U.DELTA_MAX   # the log was folded, not left to grow


def test_a_full_sync_replaces_the_store_and_changes_after_it_stay():
    s = store()
    s.put({"id": "old", "cards": [1]})
    s.sync_begin()
    for p in range(0, 230, 50):
        assert s.sync_add([{"id": "s%03d" % i, "cards": [5000 + i]} for i in range(p, min(230, p + 50))]) \
            == min(230, p + 50)
    assert s.get("old") is not None and s.get("s001") is None   # the old store answers until the commit
    assert s.sync_commit() == 230
    assert s.get("old") is None and s.by_card(1) == []
    assert ids(s.by_card(5100)) == ["s100"]
    s.put({"id": "new", "cards": [1]})
    s.delete("s000")
    s = reboot(s)
    assert s.count() == 230 and ids(s.by_card(1)) == ["new"] and s.get("s000") is None
    assert len(set(everyone(s, 33))) == 230


def test_paging_continues_after_an_id_even_one_deleted_meanwhile():
    s = store()
    s.sync_begin()
    s.sync_add([{"id": "u%02d" % i} for i in range(40)])
    s.sync_commit()
    first, more = s.page(None, 10)
    assert len(first) == 10 and more
    s.delete(first[-1][0])
    s.put({"id": "late"})
    rest = everyone_after(s, first[-1][0])
    seen = [r[0] for r in first[:-1]] + rest
    assert len(seen) == len(set(seen))
    assert set(seen) >= set("u%02d" % i for i in range(40)) - {first[-1][0]}


def everyone_after(s, after):
    out = []
    for _ in range(100):
        recs, more = s.page(after, 6)
        out.extend(r[0] for r in recs)
        if not more:
            return out
        after = recs[-1][0]
    raise AssertionError("paging never ended")


def test_a_sync_naming_a_user_twice_is_refused_and_the_old_store_stays():
    s = store()
    s.put({"id": "keep", "cards": [9]})
    s.sync_begin()
    s.sync_add([{"id": "a"}, {"id": "b"}])
    s.sync_add([{"id": "a", "cards": [3]}])
    e = raises(ValueError, s.sync_commit)
    assert "user a is in the sync twice" in str(e)
    assert ids(s.by_card(9)) == ["keep"] and s.count() == 1
    assert raises(ValueError, s.sync_add, [{"id": "c"}])   # the sync is over: begin again


def test_a_sync_page_with_one_bad_user_keeps_none_of_it():
    s = store()
    s.sync_begin()
    s.sync_add([{"id": "a"}])
    raises(ValueError, s.sync_add, [{"id": "b"}, {"id": "c", "cards": "many"}])
    assert s.sync_commit() == 1
    assert s.get("b") is None and s.get("a") is not None


def test_a_sync_left_open_by_a_restart_leaves_the_old_store_and_no_files():
    s = store()
    s.put({"id": "keep"})
    s.sync_begin()
    s.sync_add([{"id": "u%d" % i, "cards": [i + 1]} for i in range(30)])
    s = reboot(s)
    assert s.count() == 1 and s.get("keep") is not None and s.by_card(3) == []
    assert sorted(os.listdir(s.folder)) == ["base", "delta"]


def test_an_open_sync_refuses_changes_saying_why_and_is_abandoned_after_two_idle_minutes():
    from agent.access import changes
    from agent.hal import ticks_add, ticks_ms
    now = [ticks_ms()]
    changes.now_ms = lambda: now[0]
    try:
        s = store()
        for i in range(10):
            s.put({"id": "u%d" % i, "cards": [100 + i, 200 + i, 300 + i, 400 + i], "pin": "1234%d" % i})
        s.sync_begin()
        s.sync_add([{"id": "u1"}])
        now[0] = ticks_add(now[0], 119000)
        # Taken now, a commit would drop it: refused, and the cloud is told why.
        e = raises(ValueError, s.put, {"id": "u3", "enabled": False})
        assert "a full sync is open (1 users received, the last page 119 s ago)" in str(e)
        assert "abandoned 120 s after its last page" in str(e)
        raises(ValueError, s.delete, "u3")
        before = log.counters.get("users_sync_abandoned", 0)
        now[0] = ticks_add(now[0], 1000)
        for i in range(200):   # far more than the change log holds: folded, never refused
            s.put({"id": "u%d" % (i % 10), "name": "n%d" % i})
        s.put({"id": "u3", "enabled": False})   # the revocation
        assert log.counters.get("users_sync_abandoned", 0) == before + 1
        assert s.get("u3")[5] is False and s.get("u1")[1] == "n191" and s.count() == 10
        e = raises(ValueError, s.sync_commit)
        assert "no full sync is open" in str(e) and "120 s" in str(e)
        s = reboot(s)
        assert s.get("u3")[5] is False and ids(s.by_card(103)) == ["u3"]
    finally:
        changes.now_ms = ticks_ms


def test_a_new_sync_abandons_an_open_one():
    s = store()
    s.put({"id": "keep"})
    s.sync_begin()
    s.sync_add([{"id": "first%d" % i} for i in range(5)])
    before = log.counters.get("users_sync_abandoned", 0)
    s.sync_begin()
    assert log.counters.get("users_sync_abandoned", 0) == before + 1
    assert s.sync_add([{"id": "second"}]) == 1
    assert s.sync_commit() == 1
    assert ids(everyone_recs(s)) == ["second"]


def everyone_recs(s):
    return s.page(None, 50)[0]


def test_users_sharing_a_pin_are_both_found():
    s = store()
    s.put({"id": "a", "pin": "5555"})
    s.put({"id": "b", "pin": "5555"})
    s.put({"id": "c", "pin": "6666"})
    assert ids(s.by_pin("5555")) == ["a", "b"]
    s.compact()
    assert ids(s.by_pin("5555")) == ["a", "b"] and ids(s.by_pin("6666")) == ["c"]
    assert s.pin_matches(s.get("a"), "5555") and not s.pin_matches(s.get("c"), "5555")


def test_the_store_holds_at_most_max_users():
    s = store(max_users=3)
    for i in range(3):
        s.put({"id": "u%d" % i})
    e = raises(ValueError, s.put, {"id": "u3"})
    assert "max_users" in str(e)
    s.put({"id": "u0", "name": "an update is not a new user"})
    s.sync_begin()
    raises(ValueError, s.sync_add, [{"id": "x%d" % i} for i in range(4)])
    assert s.count() == 3


def test_clear_empties_the_store_for_good():
    s = store()
    s.put({"id": "u1", "cards": [1]})
    s.clear()
    assert s.count() == 0 and s.by_card(1) == []
    assert reboot(s).count() == 0


# -- what a broken flash does ------------------------------------------------------
def _flip(path, at):
    with open(path, "rb") as f:
        data = bytearray(f.read())
    data[at] ^= 0x55
    with open(path, "wb") as f:
        f.write(data)


def test_an_unreadable_base_is_reported_kept_aside_and_replaced_by_an_empty_store():
    log.set_level("error")
    s = store()
    s.put({"id": "u1", "cards": [1]})
    s.compact()
    with open(s.folder + "/base", "wb") as f:
        f.write(b"not a user store at all" * 10)
    before = log.counters.get("users_store_bad", 0)
    s = reboot(s)
    assert log.counters.get("users_store_bad", 0) == before + 1
    assert s.count() == 0 and s.by_card(1) == []
    assert "base.bad" in os.listdir(s.folder)
    s.put({"id": "u2", "cards": [2]})       # and it works from there on
    assert ids(reboot(s).by_card(2)) == ["u2"]


def test_a_corrupt_record_reads_as_absent_and_is_counted():
    log.set_level("error")
    s = store()
    s.sync_begin()
    s.sync_add([{"id": "a", "cards": [1]}, {"id": "b", "cards": [2]}])
    s.sync_commit()
    _flip(s.folder + "/base", 12)   # inside the first record
    s = reboot(s)
    before = log.counters.get("users_bad_record", 0)
    found = [s.by_card(1), s.by_card(2)]
    assert log.counters.get("users_bad_record", 0) > before
    assert [ids(f) for f in found].count([]) == 1   # one user unreadable, the other still found


def test_a_torn_change_is_cut_off_and_the_changes_before_it_kept():
    log.set_level("error")
    s = store()
    s.put({"id": "a", "cards": [1]})
    s.put({"id": "b", "cards": [2]})
    with open(s.folder + "/delta", "ab") as f:
        f.write(b"\xd1\x00\x40\x00\x00")    # a frame's start, then the power went
    before = log.counters.get("users_delta_torn", 0)
    s = reboot(s)
    assert log.counters.get("users_delta_torn", 0) == before + 1
    assert ids(s.by_card(1)) == ["a"] and ids(s.by_card(2)) == ["b"]
    s.put({"id": "c", "cards": [3]})         # appended after the good ones, not behind garbage
    s = reboot(s)
    assert ids(s.by_card(3)) == ["c"] and s.count() == 3


def test_changes_made_on_an_older_base_are_not_applied_to_a_newer_one():
    s = store()
    s.put({"id": "a", "cards": [1]})
    with open(s.folder + "/delta", "rb") as f:
        old_log = f.read()
    s.sync_begin()
    s.sync_add([{"id": "b", "cards": [2]}])
    s.sync_commit()
    with open(s.folder + "/delta", "wb") as f:
        f.write(old_log)                     # what a cut between rename and remove leaves
    s = reboot(s)
    assert s.get("a") is None and s.count() == 1 and ids(s.by_card(2)) == ["b"]


def test_indexes_built_in_many_passes_find_everyone_even_users_sharing_a_pin():
    # A pass keeps SORT_MAX entries: with a tiny one, every staging part
    # takes many passes (as 10,000 users do with the real one).
    from agent.access import build
    real = build.SORT_MAX
    build.SORT_MAX = 3
    try:
        s = store()
        s.sync_begin()
        for p in range(0, 200, 50):
            s.sync_add([{"id": "u%03d" % i, "cards": [7000 + i], "pin": "1234" if i % 2 else "%04d" % i}
                        for i in range(p, p + 50)])
        s.sync_commit()
    finally:
        build.SORT_MAX = real
    for i in range(200):
        assert ids(s.by_card(7000 + i)) == ["u%03d" % i]
        assert s.get("u%03d" % i)[0] == "u%03d" % i
    assert len(s.by_pin("1234")) == 2   # a hundred share it: two are enough to call it ambiguous
    assert ids(s.by_pin("0010")) == ["u010"]
    assert len(set(everyone(s, 50))) == 200
