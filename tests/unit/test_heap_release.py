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
