# Code that only a start-up step needs is released after it (on
# MicroPython bytecode lives in the scarce heap): a new user store's build
# code goes, and comes back with the first user command that needs it.
import sys

from agent import hal
from agent.access.users import UserStore

from support import tmpdir

BUILD_CODE = ("agent.access.build", "agent.access.changes", "agent.access.check", "agent.codecs.user_fields")


def _loaded_since(before):
    return [n for n in BUILD_CODE if n in sys.modules and n not in before]


def test_a_new_user_store_releases_its_build_code_and_still_syncs_and_survives_a_reboot():
    before = hal.loaded()
    s = UserStore(tmpdir() + "/users/dev-1", 100)
    assert _loaded_since(before) == []
    assert s.count() == 0
    s.sync_begin()
    s.sync_add([{"id": "u1", "name": "Ann", "cards": [42]}])
    assert s.sync_commit() == 1
    again = UserStore(s.folder, 100)
    assert [r[0] for r in again.by_card(42)] == ["u1"]


def test_release_since_forgets_only_the_agent_modules_loaded_after():
    before = hal.loaded()
    hal.release_since(before)
    assert hal.loaded() == before
    hal.release("agent.backoff")
    from agent.backoff import Backoff
    assert "agent.backoff" in sys.modules and Backoff is not None
    before.discard("agent.backoff")
    hal.release_since(before)
    assert "agent.backoff" not in sys.modules


def test_code_about_to_load_lazily_gets_a_collected_heap_once():
    # hal.loading: on MicroPython a collection before a module that is not
    # loaded yet (so its code fills the holes garbage left), none before one
    # that is; CPython frees by reference count and never collects here.
    calls = []
    collect = hal.collect
    hal.collect = lambda: calls.append(1)
    try:
        hal.loading("agent.access.not_a_module_yet")
        hal.loading("agent.hal")            # loaded: nothing to do
    finally:
        hal.collect = collect
    assert calls == [1]
    if hal.MICROPYTHON:
        import gc
        junk = [bytearray(64) for _ in range(100)]
        junk = None  # noqa: F841 - garbage now, until a collection
        before = gc.mem_alloc()
        hal.loading("agent.access.not_a_module_yet")
        assert gc.mem_alloc() < before - 6000, (before, gc.mem_alloc())
