# The doorlink commands as a user types them.
import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys

from host_tools.bench import BenchStore, start_bench
from host_tools.paths import BOARDS

DOORLINK = [sys.executable, "-m", "host_tools.cli"]


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_bench_add_device_creates_db(tmp_path):
    db = tmp_path / "b.sqlite3"
    res = subprocess.run(DOORLINK + ["bench", "add-device", "--id", "d9", "--token", "t9", "--db", str(db)],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    store = BenchStore(db)
    assert store.check_token("d9", "t9") and not store.check_token("d9", "nope")
    store.close()


def test_command_to_unreachable_bench_is_a_clear_error():
    port = _free_port()
    res = subprocess.run(DOORLINK + ["command", "d1", "unlock", "--server", "ws://127.0.0.1:%d/ws" % port,
                                     "--timeout", "3"], capture_output=True, text=True, timeout=30)
    assert res.returncode == 1
    assert "cannot reach" in res.stderr and "bench running" in res.stderr


def test_command_bad_payload_is_refused():
    res = subprocess.run(DOORLINK + ["command", "d1", "unlock", "--payload", "[1]"],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 2 and "--payload must be a JSON object" in res.stderr


async def test_run_agent_against_a_server_then_command_it(tmp_path):
    bench = await start_bench("127.0.0.1", 0, str(tmp_path / "b.sqlite3"))
    bench.store.add_device("cli-door", "tok_cli")
    site = tmp_path / "site.json"
    # The site file points nowhere useful: --server overrides it.
    site.write_text(json.dumps({"server": "ws://127.0.0.1:9/ws", "device_id": "cli-door", "token": "tok_cli"}))
    board = tmp_path / "board.json"
    spec = json.loads((BOARDS / "emulated.json").read_text())
    spec["emulator"]["port"] = _free_port()
    spec["journal"]["path"] = "journal"     # beside this copy: inside tmp_path
    board.write_text(json.dumps(spec))
    proc = await asyncio.create_subprocess_exec(
        *DOORLINK, "run", "--board", str(board), "--site", str(site), "--runtime", "cpython",
        "--server", bench.url, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    try:
        async def registered():
            async for line in proc.stdout:
                if b"registered as cli-door" in line:
                    return True
        assert await asyncio.wait_for(registered(), 20)
        cmd = await asyncio.create_subprocess_exec(
            *DOORLINK, "command", "cli-door", "status", "--server", bench.url,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(cmd.communicate(), 20)
        assert cmd.returncode == 0, err
        result = json.loads(out)
        assert result["ok"] and result["result"]["board"] == "emulated"
    finally:
        proc.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(proc.wait(), 10) == 0
        await bench.stop()


def test_demo_runs_for_a_duration_and_stops_cleanly():
    port = _free_port()
    res = subprocess.run(DOORLINK + ["demo", "--port", str(port), "--duration", "11"],
                         capture_output=True, text=True, timeout=60,
                         env=dict(os.environ, PYTHONUNBUFFERED="1"))
    out = res.stdout
    assert res.returncode == 0, out + res.stderr
    assert "ONLINE     demo-door-1" in out
    assert "telemetry  demo-door-1" in out
    assert "doorlink command demo-door-1 unlock" in out
    # The management channel beside the uplink, and how to use it.
    assert "CONTROL    demo-door-1  management channel open" in out
    assert ", signed requests)" in out and "not signed" not in out   # as a site should run it
    assert "doorlink control demo-door-1 app/state" in out
    assert f"dashboard    http://127.0.0.1:{port}/" in out
    assert "admin        demo-admin, token " in out
    assert "app user     uid demo-user (appid doorlink), token " in out and f"ws://127.0.0.1:{port}/ws/app/v1" in out
    # The door decides live: Ann's card opens it, the visitor walks through,
    # it relocks; a stranger's card does not.
    assert "GRANTED    demo-door-1  front  user=1001 by card 10012345" in out
    assert "door       demo-door-1  front  opened" in out
    assert "locked     demo-door-1  front  (door closed)" in out
    assert "DENIED     demo-door-1  front  card 12345: unknown_card" in out
    # Ann's PIN, given in the sync, shown nowhere as text of its own (the
    # demo's random hex tokens hold those digits now and then: 24685c69…).
    assert not re.search(r"(?<![0-9A-Za-z.])2468(?![0-9A-Za-z.])", out), out
    assert "demo stopped" in out


def test_perf_journal_prints_figures():
    res = subprocess.run(DOORLINK + ["perf", "journal", "--records", "50", "--replay-records", "100"],
                         capture_output=True, text=True, timeout=240)
    assert res.returncode == 0, res.stdout + res.stderr
    out = res.stdout
    for label in ("LittleFS (RAM flash),  1 per sync", "host file system + fsync", "micropython agent, 100 records",
                  "cpython agent, 100 records"):
        assert label in out, out


def test_attendance_demo_shows_punches():
    port = _free_port()
    res = subprocess.run(DOORLINK + ["demo", "--attendance", "--uplink", "xml_ws", "--port", str(port),
                                     "--duration", "9"],
                         capture_output=True, text=True, timeout=60, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "ONLINE     demo-terminal-1" in res.stdout
    assert "PUNCH      demo-terminal-1  user=" in res.stdout
