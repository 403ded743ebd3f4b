"""`doorlink run --control URL` as a technician types it: the agent opens its
management channel to the bench's /control, an operator asks it for its
state with `doorlink control`, and the live log (`doorlink demo`'s view of
the bench) says when the channel comes up and goes down. A mistaken URL is
one config error line."""

import asyncio
import json
import signal
import socket
import sys

from host_tools import live
from host_tools.bench.app import CONTROL
from host_tools.paths import BOARDS

from e2e_support import DEVICE, TOKEN, eventually

DOORLINK = [sys.executable, "-m", "host_tools.cli"]


def _files(tmp_path, server):
    """The emulated door board (its emulator on a free port, its journal
    here) and a site file with no control table: --control alone opens it."""
    spec = json.loads((BOARDS / "emulated.json").read_text())
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        spec["emulator"]["port"] = s.getsockname()[1]
    spec["journal"]["path"] = str(tmp_path / "journal")
    board = tmp_path / "board.json"
    board.write_text(json.dumps(spec))
    site = tmp_path / "site.json"
    site.write_text(json.dumps({"server": server, "device_id": DEVICE, "token": TOKEN}))
    return board, site


async def _doorlink(*args, timeout=30):
    proc = await asyncio.create_subprocess_exec(*DOORLINK, *args, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    return proc.returncode, out.decode(), err.decode()


def _live(bench, start):
    return [line for line in (live.render(kind, data) for kind, data in bench.events) if line and start in line]


async def test_doorlink_run_control_opens_the_management_channel(bench, tmp_path):
    board, site = _files(tmp_path, bench.url)
    proc = await asyncio.create_subprocess_exec(
        *DOORLINK, "run", "--board", str(board), "--site", str(site), "--control", bench.control_url,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    lines = []

    async def read():
        async for raw in proc.stdout:
            lines.append(raw.decode("utf-8", "replace").rstrip())

    reader = asyncio.create_task(read())
    try:
        await eventually(lambda: DEVICE in bench.app[CONTROL].online() or proc.returncode is not None, 30)
        assert proc.returncode is None, "\n".join(lines)
        rc, out, err = await _doorlink("control", DEVICE, "app/state", "--server", bench.url)
        assert rc == 0, err
        state = json.loads(out)
        assert state["error"] == "" and state["body"]["system"]["sn"] == DEVICE
        assert state["body"]["system"]["os"] == "micropython"   # the emulated board's first runtime
        opened = _live(bench, "management channel open")
        assert len(opened) == 1 and f"CONTROL    {DEVICE}  management channel open (from 127.0.0.1:" in opened[0]
        assert "unsigned requests" in opened[0]
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)
        rc = await asyncio.wait_for(proc.wait(), 15)
        await asyncio.wait_for(reader, 5)
        print("\n".join(lines))
    assert rc == 0
    closed = await eventually(lambda: _live(bench, "management channel closed"), 10)
    assert f"CONTROL    {DEVICE}  management channel closed: " in closed[0]


async def test_doorlink_run_control_refuses_a_url_that_is_not_websocket(tmp_path):
    board, site = _files(tmp_path, "ws://127.0.0.1:9/ws")
    rc, out, err = await _doorlink("run", "--board", str(board), "--site", str(site),
                                   "--control", "http://127.0.0.1:9/control")
    assert rc == 2 and "Traceback" not in out + err, out + err
    assert "config error: " in err and "'control.url'" in err and "ws://" in err, err
    assert "fix --control" in err   # the flag, not the site file, holds the mistake
    assert not (tmp_path / "journal").exists()   # nothing started
