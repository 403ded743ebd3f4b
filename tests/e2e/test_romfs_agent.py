# The door agent as a board with a ROMFS partition runs it: its modules
# executed in place from an image that `mpremote romfs build` made of the
# agent's .mpy (host_tools/mp/romboot.py mounts it with vfs.VfsRom, as such
# firmware mounts its partition at /rom), under a heap well below the one
# the same board needs with its code loaded from .mpy files. The agent must
# come from the image or not start at all (romboot exits otherwise).
import base64
import json

import pytest

from agent.config import load_board
from host_tools.bench.app import CONTROL
from host_tools.paths import board_path

from e2e_support import DEVICE, SITE, TOKEN, eventually

# The emulated door board (door, Wiegand reader, climate) with its
# management channel, run from ROMFS: smallest heap measured 232-256 KB for
# 10,000 backlog events and a 6 KB message (`doorlink perf footprint`);
# from .mpy files it needs 352 KB or more.
HEAP_KB = 256
PUT_BYTES = 4608   # base64 + envelope: a 6 KB message


@pytest.fixture
def rig_options(tmp_path):
    spec = json.loads(board_path("emulated").read_text())
    spec["heap_kb"] = HEAP_KB
    board = tmp_path / "emulated-romfs.json"
    board.write_text(json.dumps(spec))
    return {"device_id": DEVICE, "token": TOKEN, "site": SITE, "board": board, "romfs": True}


async def test_the_door_agent_runs_from_a_romfs_image_in_a_smaller_heap(rig, bench, admin, figure):
    control = bench.app[CONTROL]
    url = bench.url.rsplit("/", 1)[0] + "/control"
    await rig.start_agent(site=rig.write_site(control={"url": url, "liveness_s": 30}), runtime="micropython")
    await admin.next(lambda m: m.get("type") == "device_status" and m["status"] == "online", timeout=30)

    emu = rig.session.emulator
    relay = load_board(str(rig.board_path))["peripherals"][0]["relay_pin"]
    assert emu.relay_energised() is False
    assert (await admin.command("unlock", {"duration_ms": 500}))["payload"]["ok"] is True
    await emu.wait_output(relay, 1, timeout=5)
    await emu.wait_output(relay, 0, timeout=5)

    # the management channel takes a 6 KB message in this heap
    await eventually(lambda: DEVICE in control.online(), timeout=20)
    data = base64.b64encode(bytes(i % 251 for i in range(PUT_BYTES))).decode()
    reply = await control.request(DEVICE, "file/put", {"path": "/romfs.bin", "data": data}, timeout=15)
    assert not reply.get("error"), reply
    listed = await control.request(DEVICE, "file/list", {"path": "/"}, timeout=15)
    assert "romfs.bin" in json.dumps(listed), listed

    status = (await admin.command("status", cmd_id="st"))["payload"]["result"]
    assert status["heap_budget_kb"] == HEAP_KB
    assert 0 < status["heap_peak"] <= HEAP_KB * 1024
    figure("MicroPython door agent run from a ROMFS image (board with control channel): peak live heap "
           "%d bytes of a %d KB budget" % (status["heap_peak"], HEAP_KB))
    out = rig.output(None)
    assert "MemoryError" not in out and "Traceback" not in out and "romboot:" not in out
