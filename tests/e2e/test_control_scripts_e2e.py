"""script/* end to end, on each runtime: a technician's `doorlink control`
puts a script (--file), lists it, gets it back (--out), runs it (it logs and
shows a line on the terminal), seals it (script/encrypt: then script/get
refuses and the text is not on the device's flash, yet it runs), runs one
that loops without sleeping (stopped and logged; the channel goes on), stops
a polite endless one and deletes them - through the bench's control server
and the agent's real management channel."""

import base64
import json

from host_tools.bench.app import CONTROL

from e2e_support import DEVICE, doorlink_control, eventually


async def doorlink(*args):
    return await doorlink_control(DEVICE, *args)


def said(rig, text):
    return text in rig.output()


async def test_scripts_through_the_bench_with_doorlink_control(runtime, rig, bench, tmp_path):
    control = bench.app[CONTROL]
    url = bench.url.rsplit("/", 1)[0] + "/control"
    await rig.start_agent(site=rig.write_site(control={"url": url, "scripts": True}), runtime=runtime)
    await eventually(lambda: DEVICE in control.online(), timeout=20)
    server = ("--server", bench.url)

    hello = tmp_path / "hello.py"
    hello.write_text("n = 0\nfor i in range(3):\n    n += i\n    await sleep(1)\nlog('hello from', n)\n")
    code, out, err = await doorlink("script/put", '{"name": "hello.py"}', "--file", str(hello), *server)
    assert code == 0, err
    code, out, err = await doorlink("script/list", *server)
    assert code == 0 and json.loads(out)["body"] == ["hello.py"], (out, err)
    back = tmp_path / "back.py"
    code, out, err = await doorlink("script/get", '{"name": "hello.py"}', "--out", str(back), *server)
    assert code == 0 and back.read_bytes() == hello.read_bytes(), err

    code, out, err = await doorlink("script/run", '{"name": "hello.py"}', *server)
    assert code == 0, err
    await eventually(lambda: said(rig, "hello.py: hello from 3"), timeout=10)

    code, out, err = await doorlink("script/encrypt", '{"name": "hello.py"}', *server)
    assert code == 0, err
    stored = (rig.journal / ".scripts" / "hello.py").read_bytes()
    assert stored.startswith(b"DLS1") and b"hello" not in stored
    code, out, err = await doorlink("script/get", '{"name": "hello.py"}', *server)
    assert code == 1 and "sealed" in err, (out, err)
    code, out, err = await doorlink("script/run", '{"name": "hello.py"}', *server)
    assert code == 0, err
    await eventually(lambda: rig.output().count("hello.py: hello from 3") == 2, timeout=10)

    # A loop that never sleeps is stopped; the channel answers straight after.
    body = json.dumps({"name": "spin.py", "data": base64.b64encode(b"while True:\n    pass\n").decode()})
    code, out, err = await doorlink("script/put", body, *server)
    assert code == 0, err
    code, out, err = await doorlink("script/run", '{"name": "spin.py"}', *server)
    assert code == 0, err
    await eventually(lambda: said(rig, "spin.py stopped: ran over 20 ms without await sleep(ms)"), timeout=10)
    code, out, err = await doorlink("app/state", *server)
    assert code == 0 and json.loads(out)["body"]["script"] == {"select": "spin.py", "running": False}, out

    # A polite endless one runs until stopped.
    body = json.dumps({"name": "tick.py", "data": base64.b64encode(b"while True:\n    await sleep(50)\n").decode()})
    assert (await doorlink("script/put", body, *server))[0] == 0
    assert (await doorlink("script/run", '{"name": "tick.py"}', *server))[0] == 0
    code, out, err = await doorlink("app/state", *server)
    assert json.loads(out)["body"]["script"] == {"select": "tick.py", "running": True}, out
    code, out, err = await doorlink("script/stop", *server)
    assert code == 0, err
    await eventually(lambda: said(rig, "tick.py stopped: script/stop"), timeout=10)

    for name in ("hello.py", "spin.py", "tick.py"):
        code, out, err = await doorlink("script/delete", json.dumps({"name": name}), *server)
        assert code == 0, err
    code, out, err = await doorlink("script/list", *server)
    assert json.loads(out)["body"] == []
    code, out, err = await doorlink("script/put", '{"name": "../x.py"}', "--file", str(hello), *server)
    assert code == 1 and "escapes the data root" in err, err
    assert "Traceback" not in rig.output()


# The scripts family's cost on a board: what stays (the request table's
# part, the runner where the site allows scripts), and what a run of the
# largest script allocates and holds while it runs, on the emulated board's
# heap with the agent from .mpy as deployed.
HEAP_COST = """
import gc, sys
sys.path.insert(0, sys.argv[2])   # the .mpy before the sources
from agent import hal, log
from agent.errors import CommandError
from agent import records   # loaded in any agent already
import asyncio
base = sys.argv[1]
log.set_level("warn")
gc.collect(); before = gc.mem_alloc()
from agent.control import script_format, scripts
gc.collect(); code = gc.mem_alloc() - before

class Thing:
    def listen(self, cb): pass
    def get(self, n): return None
class Device:
    board = {"journal": {"path": base, "max_kb": 64}, "heap_kb": int(sys.argv[3])}
    site = {"control": {"scripts": True, "max_message": 16384}}
    thing = Thing(); doors = None; display = None; scripts = None
h = {}
gc.collect(); before = gc.mem_alloc()
scripts.register(h, Device())
gc.collect(); resident = gc.mem_alloc() - before
# The largest script: many short functions with loops.
parts = []
n = 0
i = 0
while n < script_format.MAX_BYTES - 120:
    p = "def f%d(n):\\n    for k in range(n):\\n        log('step', k, door.lock())\\n    return n + %d\\n" % (i, i)
    parts.append(p)
    n += len(p)
    i += 1
parts.append("await sleep(100000)\\n")
text = "".join(parts)
parts = None
import binascii
data = binascii.b2a_base64(text.encode(), newline=False).decode()
async def main():
    gc.collect(); b = gc.mem_alloc()
    await h["script/put"]({"name": "big.py", "data": data})
    gc.collect(); b = max(b, gc.mem_alloc())
    await h["script/run"]({"name": "big.py"})
    await asyncio.sleep(0.05)
    gc.collect()
    running = gc.mem_alloc() - b
    await h["script/stop"](None)
    gc.collect()
    after = gc.mem_alloc() - b
    # Again: a second run leaves nothing more (the first one's new names
    # stay interned, as any code's do on MicroPython).
    await h["script/run"]({"name": "big.py"})
    await asyncio.sleep(0.05)
    await h["script/stop"](None)
    gc.collect()
    again = gc.mem_alloc() - b - after
    print("@@%d %d %d %d %d %d %d" % (code, resident, len(text), b, running, after, again))
try:
    asyncio.run(main())
except CommandError as e:
    print("@@refused", e)   # said before a byte was allocated: never a MemoryError
"""


async def test_the_scripts_heap_cost_on_micropython(micropython, tmp_path, figure):
    from agent.control.script_store import CHECKER, HEAP_PER_BYTE
    from host_tools import mpy
    script = tmp_path / "cost.py"
    script.write_text(HEAP_COST)

    async def run(heap_kb):
        folder = tmp_path / str(heap_kb)
        folder.mkdir()
        ran = await micropython.run(script, folder, mpy.build_deploy(), heap_kb, heap_kb=heap_kb)
        line = [x for x in ran.out.splitlines() if x.startswith("@@")]
        assert line, ran.out
        return None if line[0].startswith("@@refused") else [int(x) for x in line[0][2:].split()]

    code, resident, size, base, running, after, again = await run(384)   # the emulated door board's heap
    figure("script/* heap on MicroPython: %.1f KB of code stays, the runner %.1f KB more where scripts are on; "
           "a %d byte script needs %d KB free to be put or run, holds %.1f KB while it runs; its names stay "
           "interned (%.1f KB), a second run leaves %d bytes more"
           % (code / 1024, resident / 1024, size, (CHECKER + size * HEAP_PER_BYTE) // 1024, running / 1024,
              after / 1024, again))
    assert again < 512   # nothing of a stopped script stays (its log lines go to the ring)
    assert running < size * 4   # its code and coroutine, not its text's checks
    # script/put and script/run ask for HEAP_PER_BYTE free per byte of
    # text first: on a heap too small for the largest script, they refuse
    # saying so; on any that lets them go on, no MemoryError comes.
    refused = [kb for kb in range(240, 150, -15) if await run(kb) is None]
    assert refused and refused[0] < 240, refused
    assert resident < 16 * 1024 and code < 3 * 1024   # what docs/protocols/cloud-control.md states
