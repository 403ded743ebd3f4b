# The Thing's user commands on both runtimes, as a cloud calls them: the
# answers say what the store now holds, never a PIN, and what the cloud
# may not ask is refused with a reason before anything changes.
from agent import config, log
from agent.access.controller import USER_JSON_MAX, Access
from agent.access.record import PAGE
from agent.access.users import UserStore
from agent.errors import CommandError

from door_pins import Board
from support import araises, tmpdir


def thing(max_frame=16384):
    log.set_level("error")
    board = Board()
    store = UserStore(tmpdir() + "/users/d1")
    Access(board.thing, store, board.doors, {"gmt": 0, "max_frame": max_frame},
           config._check("-", {}, config.ACCESS_FIELDS))
    return board.thing, store


async def test_set_get_enable_delete_as_a_cloud_sees_them():
    t, store = thing()
    assert await t.call("user_set", {"user": {"id": "u1", "name": "Ann", "cards": [42], "pin": "1234"}}) \
        == {"stored": 1, "count": 1}
    got = await t.call("user_get", {"id": "u1"})
    assert got == {"user": {"id": "u1", "name": "Ann", "cards": [42], "enabled": True, "pin": True}}
    assert (await t.call("user_enable", {"id": "u1", "enabled": False}))["user"]["enabled"] is False
    assert store.get("u1")[2] == [42]          # enabling touched nothing else
    assert await t.call("user_delete", {"id": "u1"}) == {"deleted": True, "count": 0}
    assert await t.call("user_delete", {"id": "u1"}) == {"deleted": False, "count": 0}
    e = await araises(CommandError, t.call("user_get", {"id": "u1"}))
    assert "unknown user u1" in str(e)
    await araises(CommandError, t.call("user_enable", {"id": "u1", "enabled": True}))


async def test_user_set_with_several_users_says_how_many_were_stored_before_a_bad_one():
    t, store = thing()
    e = await araises(CommandError, t.call("user_set", {"users": [{"id": "a"}, {"id": "b"}, {"id": "c", "fp": -1}]}))
    assert "user c" in str(e) and "the 2 before it are stored" in str(e)
    assert store.count() == 2
    await araises(CommandError, t.call("user_set", {"users": [{"id": "x%d" % i} for i in range(PAGE + 1)]}))
    await araises(CommandError, t.call("user_set", {"user": {"id": "a"}, "users": []}))
    await araises(CommandError, t.call("user_set", {}))
    assert store.count() == 2


async def test_user_list_pages_through_everyone_with_answers_that_fit_a_frame():
    t, store = thing(max_frame=4096)
    await t.call("users_sync", {"phase": "begin"})
    for p in range(0, 120, PAGE):
        users = [{"id": "u%03d" % i} for i in range(p, min(120, p + PAGE))]
        await t.call("users_sync", {"phase": "page", "users": users})
    assert await t.call("users_sync", {"phase": "commit"}) == {"phase": "commit", "count": 120}
    seen, after = [], None
    for _ in range(200):
        payload = {"count": PAGE} if after is None else {"count": PAGE, "after": after}
        page = await t.call("user_list", payload)
        assert len(page["users"]) <= 4096 // USER_JSON_MAX   # a 4 KB frame holds only so many of the largest
        seen.extend(u["id"] for u in page["users"])
        if not page["more"]:
            break
        after = seen[-1]
    assert sorted(seen) == ["u%03d" % i for i in range(120)] and page["count"] == 120


async def test_a_full_sync_through_commands_and_its_misuse():
    t, store = thing()
    store.put({"id": "old"})
    e = await araises(CommandError, t.call("users_sync", {"phase": "page", "users": [{"id": "a"}]}))
    assert "begin" in str(e)
    assert await t.call("users_sync", {"phase": "begin"}) == {"phase": "begin", "page_max": PAGE}
    assert (await t.call("users_sync", {"phase": "page", "users": [{"id": "a"}, {"id": "b"}]}))["received"] == 2
    await araises(CommandError, t.call("users_sync", {"phase": "page"}))
    await araises(CommandError, t.call("users_sync", {"phase": "commit", "users": []}))
    await araises(CommandError, t.call("users_sync", {"phase": "again"}))
    assert (await t.call("users_sync", {"phase": "commit"}))["count"] == 2
    assert store.get("old") is None
    assert await t.call("users_clear", {}) == {"count": 0}
    assert store.count() == 0


async def test_a_fold_and_a_commit_let_the_doors_poll_and_lookups_stay_right_meanwhile():
    import asyncio

    from agent.access import commands
    from agent.access.users import DELTA_MAX
    t, store = thing()
    store.put({"id": "u0", "cards": [10]})   # before the sync: u0 alone
    await t.call("users_sync", {"phase": "begin"})
    await t.call("users_sync", {"phase": "page", "users": [{"id": "u%d" % i, "cards": [10 + i]} for i in range(40)]})
    polls = []   # what a door's loop saw while the store was rebuilt
    busy = [True]

    async def door():
        while busy[0]:
            polls.append(len(store.by_card(10)) + len(store.by_card(49)))
            await asyncio.sleep(0)

    slice_ms, commands.SLICE_MS = commands.SLICE_MS, 0   # let go at every step: any host is fast enough
    try:
        task = asyncio.create_task(door())
        await asyncio.sleep(0)
        assert await t.call("users_sync", {"phase": "commit"}) == {"phase": "commit", "count": 40}
        during_commit = len(polls)
        for i in range(DELTA_MAX - 1):
            await t.call("user_set", {"user": {"id": "u%d" % (i % 40), "name": "n%d" % i}})
        before_fold = len(polls)
        await t.call("user_set", {"user": {"id": "u1", "name": "folds"}})   # the change log is folded
        during_fold = len(polls) - before_fold
        assert store._dn < DELTA_MAX
        busy[0] = False
        await task
    finally:
        commands.SLICE_MS = slice_ms
    assert during_commit > 10 and during_fold > 40   # 40 users: a step each, at least
    assert polls[:during_commit] == [1] * during_commit   # the old store, whole, until the swap
    assert set(polls[during_commit:]) == {2}              # every lookup, mid-fold too, found both


async def test_a_change_while_a_sync_is_open_is_refused_saying_so():
    t, store = thing()
    store.put({"id": "u1", "cards": [1]})
    await t.call("users_sync", {"phase": "begin"})
    e = await araises(CommandError, t.call("user_enable", {"id": "u1", "enabled": False}))
    assert "a full sync is open" in str(e)
    e = await araises(CommandError, t.call("user_delete", {"id": "u1"}))
    assert "a full sync is open" in str(e)


async def test_a_commit_cut_short_leaves_the_old_store_and_no_build_files():
    import asyncio
    import os

    from agent.access import commands
    t, store = thing()
    store.put({"id": "old", "cards": [1]})
    await t.call("users_sync", {"phase": "begin"})
    await t.call("users_sync", {"phase": "page", "users": [{"id": "u%d" % i, "cards": [10 + i]} for i in range(40)]})
    slice_ms, commands.SLICE_MS = commands.SLICE_MS, 0
    try:
        task = asyncio.create_task(t.call("users_sync", {"phase": "commit"}))
        for _ in range(20):   # well into the index build
            await asyncio.sleep(0)
        assert not task.done()
        task.cancel()
        await araises(asyncio.CancelledError, task)
    finally:
        commands.SLICE_MS = slice_ms
    assert [r[0] for r in store.by_card(1)] == ["old"] and store.by_card(10) == [] and store.count() == 1
    assert sorted(os.listdir(store.folder)) == ["base", "delta"]
    assert await t.call("user_delete", {"id": "old"}) == {"deleted": True, "count": 0}
