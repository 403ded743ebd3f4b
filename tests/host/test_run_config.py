# Config mistakes as a technician makes them, through `doorlink run` and the
# agent process itself, per runtime: each one stops at start with one line
# naming the file and the field, exit code 2, never a traceback; relative
# paths mean what the technician meant.
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys

import pytest

from host_tools.paths import BOARDS
from host_tools.runner import RUNTIMES, agent_command

DOORLINK = [sys.executable, "-m", "host_tools.cli"]
SITE = {"server": "ws://127.0.0.1:9/ws", "device_id": "cfg-door", "token": "tok"}


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _board(folder, **patch):
    spec = json.loads((BOARDS / "emulated.json").read_text())
    spec["emulator"]["port"] = _free_port()
    spec.update(patch)
    path = folder / "board.json"
    path.write_text(json.dumps(spec))
    return path


def _site(folder, text=None, **patch):
    path = folder / "site.json"
    path.write_text(text if text is not None else json.dumps(dict(SITE, **patch)))
    return path


def _one_config_error(out, *names):
    lines = [line for line in out.splitlines() if line.strip()]
    assert "Traceback" not in out, out
    assert len(lines) == 1 and lines[0].startswith("config error: "), out
    for name in names:
        assert name in lines[0], (name, out)
    return lines[0]


def _agent(runtime, board, site, journal=None, env=None):
    argv, agent_env, cwd = agent_command(runtime, board, site, journal=journal)
    return subprocess.run(argv, env=dict(agent_env, **(env or {})), cwd=cwd, capture_output=True, text=True,
                          timeout=60)


def _doorlink(cwd, *args, env=None):
    return subprocess.run(DOORLINK + list(args), cwd=cwd, capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, **(env or {})))


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_an_unwritable_journal_stops_the_agent(runtime, tmp_path):
    # The agent used to run on, journaling nothing. A file where the folder
    # should be fails on every runtime, as root too.
    (tmp_path / "flat").write_text("a file, not a folder")
    board = _board(tmp_path, journal={"path": "flat/journal"})
    res = _agent(runtime, board, _site(tmp_path))
    assert res.returncode == 2
    _one_config_error(res.stdout + res.stderr, str(board), "'journal.path'", str(tmp_path / "flat/journal"))
    res = _agent(runtime, _board(tmp_path), _site(tmp_path), journal=tmp_path / "flat")
    assert res.returncode == 2
    _one_config_error(res.stdout + res.stderr, "'--journal'", str(tmp_path / "flat"))


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_bad_site_values_stop_the_agent_on_its_own_runtime(runtime, tmp_path):
    # Through the agent process, not only config.py: MicroPython's json
    # refuses NaN as JSON, CPython's reads it and the range refuses it.
    board = _board(tmp_path, journal={"path": "j"})
    base = '{"server": "ws://127.0.0.1:9/ws", "device_id": "d1", "token": "t", '
    cases = [(base + '"heartbeat_s": NaN}', "site.json"), (base + '"heartbeat_s": 1e999}', "'heartbeat_s'"),
             (base + '"telemetry_interval_s": 1e-9}', "'telemetry_interval_s'")]
    for text, name in cases:
        res = _agent(runtime, board, _site(tmp_path, text))
        assert res.returncode == 2, res.stdout
        _one_config_error(res.stdout + res.stderr, name)
    for device_id in ("../escape", ""):
        res = _agent(runtime, board, _site(tmp_path, device_id=device_id))
        assert res.returncode == 2, res.stdout
        _one_config_error(res.stdout + res.stderr, "site.json", "'device_id'")
    assert not (tmp_path / "escape").exists() and not (tmp_path / "j").exists()


BOARD_MISTAKES = [
    ({"emulator": {"host": "127.0.0.1", "port": 99999}}, "'emulator.port'"),
    ({"emulator": {"host": "no-such-host.invalid", "port": 8781}}, "'emulator.host'"),
    ({"heap_kb": -5}, "'heap_kb'"), ({"heap_kb": 0}, "'heap_kb'"), ({"heap_kb": 10 ** 9}, "'heap_kb'"),
    ({"hal": "esp32"}, "'hal'"), ({"runtimes": []}, "'runtimes'"),
    ({"peripherals": [{"type": "door", "relay_pin": 26, "sensor_pin": 27, "unlock_ms": -1}]},
     "'peripherals[0].unlock_ms'"),
]


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_doorlink_run_board_mistakes_are_one_line_exit_2(runtime, tmp_path):
    _site(tmp_path)
    for patch, field in BOARD_MISTAKES:
        board = _board(tmp_path, **patch)
        if "emulator" in patch:  # _board gave it a free port; these cases want theirs
            spec = json.loads(board.read_text())
            spec["emulator"] = patch["emulator"]
            board.write_text(json.dumps(spec))
        res = _doorlink(tmp_path, "run", "--board", "board.json", "--site", "site.json", "--runtime", runtime)
        assert res.returncode == 2, (patch, res.stdout, res.stderr)
        assert "Traceback" not in res.stdout + res.stderr
        assert "config error: board.json: field " + field in res.stderr, (patch, res.stderr)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_doorlink_run_emulator_port_in_use_names_the_field(runtime, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        board = _board(tmp_path)
        spec = json.loads(board.read_text())
        spec["emulator"]["port"] = taken.getsockname()[1]
        board.write_text(json.dumps(spec))
        res = _doorlink(tmp_path, "run", "--board", "board.json", "--site", str(_site(tmp_path)),
                        "--runtime", runtime)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "field 'emulator.port'" in res.stderr and "cannot listen" in res.stderr


def test_gpiozero_without_pins_is_a_board_error(tmp_path):
    # Off a Pi gpiozero finds no pin factory (forced here, so that the test
    # means the same on a Pi). A CPython-only board: MicroPython is refused
    # before anything starts.
    site = _site(tmp_path)
    res = _doorlink(tmp_path, "run", "--board", "rpi4-door", "--site", "site.json", "--journal", "j",
                    env={"GPIOZERO_PIN_FACTORY": "no-such-factory"})
    assert res.returncode == 2, res.stdout + res.stderr
    assert "Traceback" not in res.stdout + res.stderr
    line = res.stdout.strip().splitlines()[-1]
    assert line.startswith("config error: ") and str(BOARDS / "rpi4-door.json") in line, res.stdout
    assert "'peripherals[0]'" in line and "gpiozero" in line
    # gpiozero's own search (no factory forced, no Pi here): it warns once
    # per factory it falls back from; the error says it once.
    env = {k: v for k, v in os.environ.items() if k != "GPIOZERO_PIN_FACTORY"}
    res = subprocess.run(DOORLINK + ["run", "--board", "rpi4-door", "--site", "site.json", "--journal", "j"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=60, env=env)
    assert res.returncode == 2, res.stdout + res.stderr
    assert "Warning" not in res.stdout + res.stderr and "Unable to load any default pin factory" in res.stdout
    res = _doorlink(tmp_path, "run", "--board", "rpi4-door", "--site", str(site), "--runtime", "micropython")
    assert res.returncode == 2 and "runs cpython, not micropython" in res.stderr


@pytest.mark.parametrize("runtime", RUNTIMES)
async def test_doorlink_run_takes_relative_paths_from_where_it_is_typed(runtime, tmp_path):
    # --board/--site relative to the shell's directory; the board's
    # journal.path and the site's ca_file relative to the file naming them.
    (tmp_path / "boards").mkdir()
    (tmp_path / "sites").mkdir()
    _board(tmp_path / "boards", journal={"path": "j"})
    (tmp_path / "sites" / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    _site(tmp_path / "sites", ca_file="ca.pem")
    proc = await asyncio.create_subprocess_exec(
        *DOORLINK, "run", "--board", "boards/board.json", "--site", "sites/site.json", "--runtime", runtime,
        cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    seen = []
    try:
        async def started():
            async for line in proc.stdout:
                seen.append(line.decode())
                if "doorlink" in seen[-1] and "on %s" % runtime in seen[-1]:
                    return True
        assert await asyncio.wait_for(started(), 30), seen
        assert (tmp_path / "boards" / "j" / "cfg-door").is_dir()
    finally:
        proc.send_signal(signal.SIGINT)
        rc = await asyncio.wait_for(proc.wait(), 15)
    assert rc == 0, "".join(seen)
    assert "Traceback" not in "".join(seen)
