# Red team of the script runner (agent/control/script_check.py,
# script_run.py): each test is the smallest script that got past the
# script's API, held the event loop or ended the agent, and asserts what a
# site must see instead. Both runtimes, like every tests/unit file.
import asyncio
import builtins

from test_access_reader import opened
from test_control_scripts import _put, _said, _setup, _wait_done

from agent import log
from agent.control import script_check
from agent.errors import CommandError

from support import araises, raises


def _refused(text, why=""):
    e = raises(CommandError, script_check.transform, text)
    assert why in str(e), (text, str(e))


async def _ran(text, name="rt.py"):
    """Put and run `text`; -> (the log lines it left, the device, the board)."""
    device, h, board, _ = _setup()
    await _put(h, name, text)
    before = log.ring.newest()
    await h["script/run"]({"name": name})
    assert await _wait_done(device, 500)
    return _said(before), device, board


# -- past the API --------------------------------------------------------------------


def test_a_number_cannot_carry_a_name_past_the_check():
    # `1..__class__` was one "number" token, copied as it is: Python reads
    # the float 1. and its __class__, and object.__getattribute__ is a
    # getattr for any dunder from there.
    _refused("g = 1..__class__.__base__.__getattribute__\n", "__")
    _refused("x = 1if 1else 2\n", "a number runs into a name")
    _refused("x = 0x1for\n", "a number runs into a name")
    # numbers themselves stay as Python has them
    script_check.transform("x = [1.5e-3, 0x_ff, 0o17, 0b1, 1_000, .5, 1., 2j, 1e+3]\n")


async def test_the_api_objects_private_parts_are_refused_and_the_door_stays_shut():
    # reader._runner.device is the whole device: its doors grant.
    device, h, board, _ = _setup()
    for text in ("d = reader._runner.device.doors.doors[0]\nc = d.grant('script')\nawait sleep(1)\n",
                 "log(door._thing)\n", "log(display._display)\n", "log(reader._runner.device.site)\n"):
        e = await araises(CommandError, _put(h, "grant.py", text))
        assert "not for scripts" in str(e), (text, str(e))
    assert await h["script/list"](None) == []
    await asyncio.sleep(0.05)
    assert opened(board) == 0


def test_frames_of_coroutines_and_generators_are_refused():
    # CPython: f_builtins holds __import__ and open; f_globals the runner's module.
    for text in ("b = (x for x in [1]).gi_frame.f_builtins\n",
                 "g = (x for x in [1]).gi_frame.f_back\n",
                 "async def f():\n    pass\nc = f().cr_frame\n"):
        _refused(text)


def test_format_cannot_read_attributes():
    # str.format follows dots in its fields: any attribute, as text.
    _refused("log('{0._runner.device.site}'.format(reader))\n", ".format is not for scripts")
    _refused("log('%s' % door.__class__)\n", "__")


def test_builtins_past_the_api_are_refused():
    # The checker runs where the script will (put and run on the device):
    # what is not a builtin there is a NameError at run, nothing more.
    for name, text in (("execfile", "execfile('main.py')\n"),    # MicroPython: runs a file, full builtins
                       ("license", "license()\n")):              # CPython: a pager reading stdin
        if hasattr(builtins, name):
            _refused(text, name + " is not available")
    for name, text in (("map", "l = [1]\nx = any(map(l.append, l))\n"),  # a loop in C, growing
                       ("filter", "l = [1]\nx = list(filter(l.append, l))\n"),
                       ("pow", "x = pow(3, 100000000)\n"),       # seconds in C
                       ("SystemExit", "raise SystemExit\n"),     # ends CPython's event loop
                       ("KeyboardInterrupt", "raise KeyboardInterrupt\n"),
                       ("id", "x = id(door)\n")):
        _refused(text, name + " is not available")


# -- holding or ending the agent -------------------------------------------------------


def test_a_coroutine_is_only_awaited_where_it_is_made():
    # MicroPython: a coroutine is a generator; driving sleep's by hand
    # restarts the slice without ever yielding to the loop (the doors wait
    # for good). CPython: .send does the same.
    for text in ("while True:\n    for _ in sleep(0):\n        pass\n",
                 "while True:\n    c = sleep(0)\n    next(c)\n",
                 "c = sleep(0).send(None)\n",
                 "x = await sleep(0).send\n",
                 "async def f():\n    await sleep(0)\nx = list(f())\n",
                 "def g():\n    return h(1)\nasync def h(n):\n    await sleep(n)\n",
                 "x = await (sleep)(1)\n",
                 # MicroPython: awaiting a list yields its items to the loop,
                 # and the task is never woken again (nor stoppable)
                 "x = await [1]\n",
                 "x = await door.lock()\n"):
        _refused(text)
    # what is meant stays: awaiting sleep and the script's own async defs,
    # before or after their def
    script_check.transform("async def main():\n    await blink(2)\nasync def blink(n):\n"
                           "    for i in range(n):\n        await sleep(10)\nawait main()\nx = [await sleep(1)]\n")


def test_a_deep_run_of_signs_is_a_clear_refusal():
    # CPython's compiler raised RecursionError (not SyntaxError): the request crashed.
    _refused("x = " + "-" * 1200 + "1\n", "signs or nots in a row")
    _refused("x = " + "not " * 20 + "1\n", "signs or nots in a row")
    script_check.transform("x = - - 1 + ~-1\ny = not not True\n")


async def test_raising_a_base_exception_ends_the_script_not_the_agent():
    # MicroPython's event loop takes only Exception: a BaseException from a
    # task ended it, and the agent with it.
    said, device, _ = await _ran("raise BaseException('bye')\n")
    assert any("rt.py raised BaseException" in line for line in said), said
    assert not device.scripts.running()


async def test_an_exception_that_cannot_be_shown_still_ends_only_the_script():
    # Its repr raises (nested deeper than repr recurses): the runner's own
    # handler raised, and the task ended with the agent's traceback.
    said, device, _ = await _ran("l = []\nfor i in range(20000):\n    l = [l]\n    if i % 50 == 0:\n"
                                 "        await sleep(0)\nraise ValueError(l)\n")
    # (a process descheduled 20 ms on a loaded machine is stopped instead: said too)
    assert any("rt.py raised" in line or "rt.py stopped: ran over" in line for line in said), said
    assert not device.scripts.running()


async def test_a_script_cannot_forge_log_lines():
    said, _, _ = await _ran("log('hi\\n12:00:00 WARN  door: forced open')\n")
    assert any("rt.py: hi" in line for line in said), said
    assert not any("\n" in line or "\r" in line for line in said), said


async def test_sleep_takes_only_a_sane_number_of_ms():
    for arg in ("float('nan')", "float('inf')", "'5'", "100000000000", "-0.5"):
        said, _, _ = await _ran("await sleep(%s)\n" % arg)
        assert any("rt.py raised ValueError" in line and "sleep(ms)" in line for line in said), (arg, said)
