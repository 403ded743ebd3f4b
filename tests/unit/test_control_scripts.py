# script/* (agent/control/scripts.py, script_check.py, script_run.py) on
# both runtimes, over a real folder: scripts are kept, given back, sealed
# and run; the narrow subset refuses what leads past the script's API; a
# script that raises, loops without sleeping, swallows its stop or grows
# without end is stopped and logged with its own line, and a card at the
# door is decided meanwhile; running is off unless the site turns it on.
import asyncio
import binascii
import json
import os

from test_access_reader import door_with_reader, opened
from test_reader import card26, show

from agent import config, log
from agent.control import app, script_check, script_format, scripts
from agent.errors import CommandError
from agent.peripherals.display import Display

from support import araises, raises, tmpdir

CARD = 42 << 16 | 1001
OVERRAN = "ran over 20 ms without await sleep(ms)"


class Device:
    def __init__(self, base, enabled, board, display=None):
        self.board = {"journal": {"path": base, "folder": base + "/d1", "max_kb": 4}, "heap_kb": None,
                      "name": "bench"}
        self.site = {"control": {"scripts": enabled, "max_message": 16384, "url": "ws://127.0.0.1:1/c"},
                     "device_id": "d1"}
        self.thing = board.thing
        self.doors = board.doors
        self.display = display
        self.readers = []
        self.scripts = None


def _b64(text):
    return binascii.b2a_base64(text.encode(), newline=False).decode()


def _setup(enabled=True):
    board, store, reader = door_with_reader("card")
    store.put({"id": "ann", "cards": [CARD]})
    base = tmpdir()
    os.mkdir(base + "/d1")
    board.thing.prop("online", True)   # the device's own property (agent/device.py)
    display = Display(board.thing, config.peripheral("display", {}), "front", [reader])
    device = Device(base, enabled, board, display)
    handlers = {}
    scripts.register(handlers, device)
    app.register(handlers, device)
    log.set_level("info")
    return device, handlers, board, reader


def _stored(device, name, data=None):
    """The script file's bytes on flash; with `data`, written there."""
    path = device.board["journal"]["path"] + "/.scripts/" + name
    with open(path, "wb" if data else "rb") as f:
        return f.write(data) if data else f.read()


async def _put(h, name, text):
    return await h["script/put"]({"name": name, "data": _b64(text)})


async def _wait_done(device, polls=200):
    for _ in range(polls):
        if not device.scripts.running():
            return True
        await asyncio.sleep(0.01)
    return False


def _said(since):
    """The log's lines after line number `since` (log.ring.newest())."""
    return [text for _, text in log.ring.tail(since, 200)["lines"]]


# -- the subset ------------------------------------------------------------------


def test_what_leads_past_the_api_is_refused_naming_the_line():
    for text, why in (("x = 1\nimport os\n", "line 2: scripts cannot import"),
                      ("from os import remove\n", "cannot import"),
                      ("log(door.__class__)\n", "names starting with __"),
                      ("exec('1')\n", "exec is not available"),
                      ("getattr(door, 'x')\n", "getattr is not available"),
                      ("x = iter(int, 1)\n", "iter is not available"),
                      ("x = 9 ** 9\n", "** is refused"),
                      ("log(f'{door}')\n", "f-strings"),
                      ("f = lambda: 1\n", "lambda"),
                      ("class A:\n    pass\n", "classes"),
                      ("def f():\n    yield 1\n", "line 2: scripts cannot use yield"),
                      ("global x\n", "global"),
                      ("_dl_w = None\n", "names starting with __ or _dl"),
                      ("if True:\n\tlog(1)\n", "tabs"),
                      ("x = (1,\n", "not closed"),
                      ("x = 'a\n", "not closed"),
                      ("while True:\nlog(1)\n", "expected an indented block"),
                      ("x" * (script_format.MAX_BYTES + 1), "over 4096 bytes")):
        e = raises(CommandError, script_check.transform, text)
        assert why in str(e), (text, str(e))


def test_a_string_or_comment_may_say_anything():
    code, lines = script_check.transform('# import os, exec, __class__\nlog("import os; exec(x) ** __y__")\n')
    assert b"import os; exec(x) ** __y__" in code


def test_loops_and_bodies_get_a_checkpoint_and_lines_map_back():
    text = ('n = 0\nwhile n < 3:\n    n += 1\ndef f(x): return [y for y in x]\ns = """a\nb"""\n'
            'for i in range(2):\n    pass\n')
    code, lines = script_check.transform(text)
    out = code.decode().split("\n")
    assert out[0] == "async def _dl_main():"
    assert out[3].strip() == "_dl_w()" and lines[3] == 2
    assert "_dl_w ( ) ; return [ y for y in _dl_it ( x ) ]" in out[5] and lines[5] == 4
    assert lines[out.index("     _dl_w()", 8)] == 7   # the for loop's body
    assert out[8].startswith(" for i") and lines[8] == 7   # after the two-line string, still the script's line


# -- the store ---------------------------------------------------------------------


async def test_put_list_get_delete_round_trip_inside_the_store_only():
    device, h, _, _ = _setup()
    await _put(h, "a.py", "log('hi')\n")
    await _put(h, "b.py", "await sleep(1)\n")
    assert await h["script/list"](None) == ["a.py", "b.py"]
    assert binascii.a2b_base64(await h["script/get"]({"name": "a.py"})) == b"log('hi')\n"
    assert _stored(device, "a.py") == b"log('hi')\n"
    await h["script/delete"]({"name": "a.py"})
    assert await h["script/list"](None) == ["b.py"]
    for name in ("../x.py", "/etc/passwd", "a/b.py", "%2e%2e", ".hidden", "", 5):
        await araises(CommandError, h["script/put"]({"name": name, "data": _b64("log(1)")}))
    e = await araises(CommandError, _put(h, "c.py", "import os\n"))
    assert "cannot import" in str(e)
    e = await araises(CommandError, _put(h, "c.py", "if x y:\n    pass\n"))
    assert "does not compile" in str(e)
    e = await araises(CommandError, h["script/put"]({"name": "c.py", "data": "A" * 20000}))
    assert "at most 4096 bytes" in str(e)
    assert await h["script/list"](None) == ["b.py"]
    assert sorted(os.listdir(device.board["journal"]["path"])) == [".scripts", "d1"]


async def test_the_store_holds_a_bounded_number_of_scripts():
    _, h, _, _ = _setup()
    for i in range(script_format.MAX_SCRIPTS):
        await _put(h, "s%d.py" % i, "log(%d)\n" % i)
    e = await araises(CommandError, _put(h, "one-more.py", "log(1)\n"))
    assert "delete one first" in str(e)
    await _put(h, "s0.py", "log('replaced')\n")   # replacing one is fine


async def test_a_sealed_script_runs_but_its_text_never_leaves_the_device():
    device, h, _, _ = _setup()
    await _put(h, "secret.py", "log('the code is 4711')\n")
    await h["script/encrypt"]({"name": "secret.py"})
    stored = _stored(device, "secret.py")
    assert b"4711" not in stored and stored.startswith(b"DLS1")
    e = await araises(CommandError, h["script/get"]({"name": "secret.py"}))
    assert "sealed" in str(e)
    before = log.ring.newest()
    await h["script/run"]({"name": "secret.py"})
    assert await _wait_done(device)
    assert any("secret.py: the code is 4711" in line for line in _said(before))
    # A sealed file put back is refused; a tampered one is not run.
    e = await araises(CommandError, h["script/put"]({"name": "x.py", "data": binascii.b2a_base64(stored).decode()}))
    assert "sealed by the device" in str(e)
    flipped = stored[:-1] + bytes([stored[-1] ^ 1])
    _stored(device, "secret.py", flipped)
    e = await araises(CommandError, h["script/run"]({"name": "secret.py"}))
    assert "fails its check" in str(e)


# -- running -----------------------------------------------------------------------


async def test_running_is_refused_unless_the_site_turns_it_on():
    device, h, _, _ = _setup(enabled=False)
    await _put(h, "a.py", "log('ran')\n")   # the store works: put now, run once allowed
    before = log.ring.newest()
    e = await araises(CommandError, h["script/run"]({"name": "a.py"}))
    assert "control.scripts is false" in str(e)
    await asyncio.sleep(0.05)
    assert not any("ran" in line for line in _said(before))
    assert (await h["app/state"](None))["script"] == {"select": "", "running": False}


async def test_a_script_reads_the_door_shows_a_line_and_logs():
    device, h, board, reader = _setup()
    await show(reader, card26(CARD), 0)
    await _put(h, "look.py", "last = reader.last()\nlog(door.lock(), last['event'], last['user'])\n"
                             "display.show('hello ' + last['user'])\n")
    before = log.ring.newest()
    await h["script/run"]({"name": "look.py"})
    assert await _wait_done(device)
    said = _said(before)
    assert any("look.py: unlocked unlocked ann" in line or "look.py: locked unlocked ann" in line
               for line in said), said
    device.display.refresh()
    assert device.display._shown[3] == "hello ann"


async def test_a_script_that_raises_is_logged_with_its_own_line_and_the_agent_goes_on():
    device, h, _, _ = _setup()
    await _put(h, "bad.py", "x = 1\n\ndef f(n):\n    return n / 0\nf(x)\n")
    before = log.ring.newest()
    await h["script/run"]({"name": "bad.py"})
    assert await _wait_done(device)
    said = _said(before)
    assert any("bad.py raised ZeroDivisionError" in line and "at line 4" in line for line in said), said
    assert not any("Traceback" in line for line in said)
    state = (await h["app/state"](None))["script"]
    assert state == {"select": "bad.py", "running": False}


async def _stopped_alone(text, why):
    """Run `text`; a card shown while it runs is decided; -> the log lines.
    `why`: the reasons it may be stopped for."""
    device, h, board, reader = _setup()
    await _put(h, "loop.py", text)
    before = log.ring.newest()
    await h["script/run"]({"name": "loop.py"})
    await show(reader, card26(CARD), 0)
    assert opened(board) == 1
    assert await _wait_done(device)
    said = _said(before)
    assert any("loop.py stopped: " + w in line for line in said for w in why), said
    return said


async def test_loops_that_never_sleep_are_stopped_and_the_door_still_decides():
    for text in ("while True:\n    pass\n",
                 "while True: pass\n",
                 "n = 0\nfor i in range(100000):\n    for j in range(100000):\n        n += 1\n",
                 # swallowing the stop once does not help: the outer loop's checkpoint fires
                 "while True:\n    try:\n        while True:\n            pass\n    except:\n        pass\n",
                 # nor does a finally that goes round again
                 "while True:\n    try:\n        pass\n    finally:\n        continue\n",
                 # recursion that catches its own failure (2**depth calls)
                 "def f(n):\n    try:\n        f(n + 1)\n    except:\n        f(n + 1)\nf(0)\n",
                 # a comprehension over a list it grows (a board's heap may end it first)
                 "l = [1]\nx = [l.append(i) for i in l]\n"):
        await _stopped_alone(text, (OVERRAN, "out of memory") if "append" in text else (OVERRAN,))


async def test_a_polite_endless_script_runs_until_stopped_and_the_door_decides_meanwhile():
    device, h, board, reader = _setup()
    await _put(h, "tick.py", "n = 0\nwhile True:\n    n += 1\n    await sleep(5)\n")
    await h["script/run"]({"name": "tick.py"})
    await asyncio.sleep(0.05)
    assert (await h["app/state"](None))["script"] == {"select": "tick.py", "running": True}
    await show(reader, card26(CARD), 0)
    assert opened(board) == 1
    before = log.ring.newest()
    await h["script/stop"](None)
    assert not device.scripts.running()
    assert any("tick.py stopped: script/stop" in line for line in _said(before))
    # A second run of another stops the first; delete stops the one it removes.
    await _put(h, "other.py", "while True:\n    try:\n        await sleep(5)\n    except BaseException:\n"
                              "        pass\n")
    await h["script/run"]({"name": "tick.py"})
    await h["script/run"]({"name": "other.py"})
    assert device.scripts.run.name == "other.py"
    await h["script/delete"]({"name": "other.py"})
    assert not device.scripts.running()
    assert await h["script/list"](None) == ["tick.py"]


async def test_a_scripts_own_limits_are_errors_in_the_script():
    device, h, _, _ = _setup()
    for text, why in (("x = list(range(10000000))\n", "range over 100000 steps"),
                      ("await sleep(-1)\n", "sleep(ms)"),
                      ("door.open()\n", "AttributeError")):
        await _put(h, "lim.py", text)
        before = log.ring.newest()
        await h["script/run"]({"name": "lim.py"})
        assert await _wait_done(device)
        assert any("lim.py raised" in line and why in line for line in _said(before)), (text, _said(before))


async def test_a_chatty_script_cannot_flood_the_log():
    device, h, _, _ = _setup()
    await _put(h, "chat.py", "for i in range(200):\n    log('line', i)\n    await sleep(0)\n")
    before = log.ring.newest()
    await h["script/run"]({"name": "chat.py"})
    assert await _wait_done(device, 500)
    said = _said(before)
    assert len([line for line in said if "chat.py: line" in line]) == 20
    assert any("180 log lines not kept" in line for line in said), said
    assert json.dumps(log.counters.get("script_log_dropped")) != "null"
