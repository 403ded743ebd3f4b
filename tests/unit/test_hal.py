import gc
import sys

import agent
from agent import hal, log  # noqa: F401 - loaded by every agent module: not the config's to free

from support import MICROPYTHON


def test_release_frees_a_start_up_module():
    # The config module (its field tables) is needed only at start; on a
    # board its heap must come back. The package attribute held it alive
    # once, silently: both references must go.
    sys.modules.pop("agent.config", None)
    if hasattr(agent, "config"):
        delattr(agent, "config")
    gc.collect()
    before = gc.mem_alloc() if MICROPYTHON else 0
    __import__("agent.config")  # loaded to be released
    gc.collect()
    loaded = gc.mem_alloc() - before if MICROPYTHON else 0
    hal.release("agent.config")
    assert "agent.config" not in sys.modules and not hasattr(agent, "config")
    if MICROPYTHON:
        left = gc.mem_alloc() - before
        assert loaded > 8000 and left < loaded // 4, (loaded, left)

