"""file/* end to end, on each runtime: a technician's `doorlink control`
(--file up, --out down) through the bench's control server to the agent's
management channel, and the file lands in the data root on the device's
flash (journal.path/.files); a traversal through the same path is refused
and touches nothing."""

import json

from host_tools.bench.app import CONTROL

from e2e_support import DEVICE, doorlink_control, eventually


async def doorlink(*args):
    return await doorlink_control(DEVICE, *args)


async def test_files_through_the_bench_with_doorlink_control(runtime, rig, bench, tmp_path):
    control = bench.app[CONTROL]
    url = bench.url.rsplit("/", 1)[0] + "/control"
    await rig.start_agent(site=rig.write_site(control={"url": url}), runtime=runtime)
    await eventually(lambda: DEVICE in control.online(), timeout=20)
    server = ("--server", bench.url)

    upload = tmp_path / "door.cfg"
    upload.write_bytes(bytes(range(256)) * 8)   # binary, 2 KB
    code, out, err = await doorlink("file/put", '{"path": "/conf/door.cfg"}', "--file", str(upload), *server)
    assert code == 0, err
    root = rig.journal / ".files"
    assert (root / "conf" / "door.cfg").read_bytes() == upload.read_bytes()

    down = tmp_path / "back.cfg"
    code, out, err = await doorlink("file/get", '{"path": "/conf/door.cfg"}', "--out", str(down), *server)
    assert code == 0, err
    assert down.read_bytes() == upload.read_bytes()

    code, out, err = await doorlink("file/put", '{"path": "/logs", "directory": true}', *server)
    assert code == 0 and json.loads(out)["body"] == {"directory": True}, err
    code, out, err = await doorlink("file/list", '{"path": "/"}', *server)
    assert code == 0, err
    assert json.loads(out)["body"] == [{"name": "conf", "type": "dir"}, {"name": "logs", "type": "dir"}]

    # The journal keeps writing: what the attempts aim at is compared.
    boots = (rig.journal / ".boots").read_bytes()
    for path in ("../" + DEVICE, "conf/../../.boots", "%2e%2e/.boots", "..\\.boots"):
        code, out, err = await doorlink("file/delete", json.dumps({"path": path}), *server)
        assert code == 1 and ("escapes the data root" in err or "refused" in err), (path, err)
    code, out, err = await doorlink("file/put", '{"path": "../x"}', "--file", str(upload), *server)
    assert code == 1 and "escapes the data root" in err
    assert (rig.journal / ".boots").read_bytes() == boots and (rig.journal / DEVICE).is_dir()
    assert not (rig.journal / "x").exists() and sorted(p.name for p in root.iterdir()) == ["conf", "logs"]

    code, out, err = await doorlink("file/delete", '{"path": "/conf/door.cfg"}', *server)
    assert code == 0, err
    assert not (root / "conf" / "door.cfg").exists()

    # This site does not let scripts run: one is kept, and not run.
    code, out, err = await doorlink("script/put", '{"name": "a.py"}', "--file", str(upload), *server)
    assert code == 1 and "UTF-8" in err, err
    script = tmp_path / "a.py"
    script.write_text("log('ran')\n")
    code, out, err = await doorlink("script/put", '{"name": "a.py"}', "--file", str(script), *server)
    assert code == 0, err
    code, out, err = await doorlink("script/run", '{"name": "a.py"}', *server)
    assert code == 1 and "control.scripts is false" in err, err
    assert "a.py: ran" not in rig.output()
    assert "Traceback" not in rig.output()


# The files family's cost on a board: its code (from .mpy, as deployed)
# beside the rest of the channel, its handlers once registered, and what a
# file/get of the largest file holds on the heap at its peak.
HEAP_COST = """
import gc, sys, micropython
sys.path.insert(0, sys.argv[2])   # the .mpy before the sources
from agent import hal, log, journal
from agent.errors import CommandError
gc.collect(); before = gc.mem_alloc()
micropython.qstr_info()
from agent.control import files
gc.collect(); resident = gc.mem_alloc() - before
micropython.qstr_info()
from agent.control import jail
gc.collect(); code = gc.mem_alloc() - before - resident
files.jail = None
del sys.modules["agent.control.jail"]
import os
base = sys.argv[1]
os.mkdir(base + "/journal")
class Device:
    board = {"journal": {"path": base + "/journal", "max_kb": 64}, "access": {}}
    site = {"control": {"max_message": 16384}}
h = {}
gc.collect(); before = gc.mem_alloc()
files.register(h, Device())
gc.collect(); registered = gc.mem_alloc() - before
import asyncio
size = jail.limit(16384)
jail = None
with open(base + "/big", "wb") as f:
    f.write(bytes(size))
asyncio.run(h["file/put"]({"path": "/dir", "directory": True}))
os.rename(base + "/big", base + "/journal/.files/dir/big")
gc.collect(); before = gc.mem_alloc()
reply = asyncio.run(h["file/get"]({"path": "/dir/big"}))
gc.collect(); held = gc.mem_alloc() - before
assert files.__file__.endswith(".mpy"), files.__file__
# Released after the request: nothing of it stays but the reply.
assert "agent.control.jail" not in sys.modules
print("@@%d %d %d %d %d" % (resident, registered, code, size, held))
"""


async def test_the_files_familys_heap_cost_on_micropython(micropython, tmp_path):
    from host_tools import mpy
    script = tmp_path / "cost.py"
    script.write_text(HEAP_COST)
    ran = await micropython.run(script, tmp_path, mpy.build_deploy(), heap_kb=384)
    line = [x for x in ran.out.splitlines() if x.startswith("@@")]
    assert line, ran.out
    resident, registered, code, size, held = [int(x) for x in line[0][2:].split()]
    # The names the import interned go into MicroPython's qstr pools, which
    # grow by doubling: whether this import is the one that pays for a new
    # pool depends on every name before it. Their growth is told apart.
    pools = [int(x.rsplit("n_total_bytes=", 1)[1]) for x in ran.out.splitlines() if x.startswith("qstr pool:")]
    assert len(pools) == 2, ran.out
    names = pools[1] - pools[0]
    print("file/* heap on MicroPython: %.1f KB resident (code %.1f KB, handlers %.1f KB; of the code, %.1f KB "
          "qstr pools grown); %.1f KB more loaded for one request; a %d byte file/get's reply %.1f KB"
          % ((resident + registered) / 1024, resident / 1024, registered / 1024, names / 1024, code / 1024, size,
             held / 1024))
    assert resident - names + registered < 4 * 1024   # what docs/protocols/cloud-control.md states
    # Nothing of a request stays but its reply's text (base64: 4/3 of the file).
    assert held < size * 4 // 3 + 1024
