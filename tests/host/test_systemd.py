"""The Pi's service under systemd: the notify protocol on a real unix
datagram socket (READY=1 once the agent runs, WATCHDOG=1 while it is
healthy), and the shipped unit file, checked by systemd-analyze."""

import asyncio
import configparser
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent import log
from agent.config import load_board
from agent.hal import systemd
from host_tools.emulator import BoardEmulator
from host_tools.paths import BOARDS, ROOT
from host_tools.runner import BoardSession, agent_command

UNIT = ROOT / "packaging" / "doorlink-agent.service"
DEVICE = "systemd-door"
TOKEN = "tok_systemd"


class NotifySocket:
    """What systemd listens on: a unix datagram socket; .next() is the next
    message, as the list of its KEY=value lines."""

    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.setblocking(False)

    async def next(self, timeout: float = 20.0) -> list[str]:
        data = await asyncio.wait_for(asyncio.get_running_loop().sock_recv(self.sock, 4096), timeout)
        return data.decode().split("\n")

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def notify_socket(tmp_path, monkeypatch):
    path = str(tmp_path / "notify.sock")
    s = NotifySocket(path)
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    yield s
    s.close()


async def test_notify_sends_one_datagram_of_lines(notify_socket):
    assert systemd.notify("READY=1", "STATUS=running")
    assert await notify_socket.next(2) == ["READY=1", "STATUS=running"]


async def test_an_abstract_notify_socket_is_reached_too(monkeypatch):
    name = "doorlink-test-%d" % os.getpid()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(2)
    try:
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        assert systemd.notify("WATCHDOG=1")
        assert sock.recv(100) == b"WATCHDOG=1"
    finally:
        sock.close()


def test_without_systemd_nothing_is_sent_and_nothing_fails(monkeypatch, tmp_path):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert systemd.notify("READY=1") is False
    assert systemd.watchdog() is None
    # A socket that is gone (systemd restarted): counted, the agent goes on.
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "gone.sock"))
    before = log.counters.get("systemd_notify_errors", 0)
    assert systemd.notify("WATCHDOG=1") is False
    assert log.counters["systemd_notify_errors"] == before + 1


def test_the_watchdog_is_ours_only_when_systemd_runs_one_for_this_process(notify_socket, monkeypatch):
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    assert systemd.watchdog() is None
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    assert systemd.watchdog().timeout_ms == 30000
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert systemd.watchdog().timeout_ms == 30000
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid() + 1))   # a parent's, not ours
    assert systemd.watchdog() is None
    monkeypatch.setenv("WATCHDOG_PID", "x" * 5000)
    before = log.counters.get("systemd_bad_env", 0)
    assert systemd.watchdog() is None
    assert log.counters["systemd_bad_env"] == before + 1


async def test_the_agent_says_ready_then_feeds_the_watchdog_while_healthy(rig, bench, notify_socket, tmp_path):
    """A real agent process (CPython, as on a Pi) on the emulated board, its
    cloud the bench: READY=1 once its tasks run, then WATCHDOG=1 over and
    over. The measured feeding interval is printed, not asserted."""
    rig.device_id, rig.token = DEVICE, TOKEN
    bench.store.add_device(DEVICE, TOKEN)
    board_path = BOARDS / "emulated.json"
    emulator = await BoardEmulator(load_board(str(board_path))).start()
    site = rig.write_site(heartbeat_s=5)
    argv, env, cwd = agent_command("cpython", board_path, site, emulator=(emulator.host, emulator.port),
                                   journal=tmp_path / "journal")
    # 0.4 s: fed every 100 ms (a quarter), so a few feeds come quickly.
    env = dict(env, NOTIFY_SOCKET=os.environ["NOTIFY_SOCKET"], WATCHDOG_USEC="400000")
    lines: list[str] = []
    session = await BoardSession(argv, env, cwd, lines.append, emulator, None).start()
    try:
        first = await notify_socket.next()
        assert first[0] == "READY=1" and "STATUS=running" in first, first
        stamps = []
        for _ in range(5):
            assert await notify_socket.next(5) == ["WATCHDOG=1"]
            stamps.append(time.monotonic())
        gaps = [round((b - a) * 1000) for a, b in zip(stamps, stamps[1:], strict=False)]
        print("WATCHDOG=1 every %s ms (asked: 100)" % gaps)
        assert (tmp_path / "journal" / ".boots").read_text() == "1\n"   # this boot, not yet stable
        # `systemctl stop` (KillSignal=SIGINT): a clean stop, not an unstable boot.
        session.proc.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(session.wait(), 10) == 0
        assert (tmp_path / "journal" / ".boots").read_text() == "0\n"
    finally:
        await session.stop()
        print("\n".join(lines[-30:]))


def _unit() -> configparser.ConfigParser:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str
    unit.read(UNIT)
    return unit


def test_the_unit_is_a_notify_service_with_a_watchdog_that_always_restarts():
    unit = _unit()
    service = unit["Service"]
    assert service["Type"] == "notify" and service["NotifyAccess"] == "main"
    assert int(service["WatchdogSec"]) > 0
    assert service["Restart"] == "always" and unit["Unit"]["StartLimitIntervalSec"] == "0"
    assert service["KillSignal"] == "SIGINT"   # a stop asked for is a clean one (boot counter reset)
    # The agent itself is the main process (not `doorlink run`, whose child
    # systemd would not hear with NotifyAccess=main), from a venv.
    exec_start = service["ExecStart"].split()
    assert exec_start[0].endswith("/venv/bin/python") and exec_start[1:3] == ["-m", "agent.main"]
    assert "--board" in exec_start and "--site" in exec_start
    # The state folder is where the Pi's board keeps its journal (and so the boot counter).
    journal = load_board(str(BOARDS / "rpi4-door.json"))["journal"]["path"]
    assert journal.startswith("/var/lib/" + service["StateDirectory"] + "/")


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed here")
def test_systemd_analyze_verifies_the_unit(tmp_path):
    # ExecStart must name an executable that exists: this venv's python
    # stands in for the Pi's /opt/doorlink/venv.
    text = UNIT.read_text().replace("/opt/doorlink/venv", str(Path(sys.prefix)))
    unit = tmp_path / UNIT.name
    unit.write_text(text)
    res = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60,
                         check=False)
    assert res.returncode == 0 and not res.stderr.strip(), res.stderr
