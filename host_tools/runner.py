"""Starts the agent as a process on this host, under MicroPython's unix port
or CPython: the same agent/ code that runs on an ESP32 or a Raspberry Pi,
with the board's emulated peripherals (pins, the fingerprint module) when
the board file says so. What `doorlink run` and the rig (host_tools/rig.py)
start.

An agent that exits with hal.RESTART_EXIT asked to be restarted (a reboot
command on a host that cannot reset itself): it is started again, as a
board would come back after a reset.
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import sys
from collections.abc import Callable
from pathlib import Path

from agent.config import load_board
from agent.errors import ConfigError
from agent.hal import RESTART_EXIT
from host_tools import mpy
from host_tools.emulator import BoardEmulator
from host_tools.paths import ROOT
from host_tools.zfm_emulator import ReaderEmulator

RUNTIMES = ("micropython", "cpython")
ROMBOOT = ROOT / "host_tools" / "mp" / "romboot.py"   # a board's main.py, the agent in a ROMFS partition
STOP_TIMEOUT_S = 5.0


def agent_command(runtime: str, board_path: str | Path, site_path: str | Path, server: str | None = None,
                  emulator: tuple[str, int] | None = None, heap_kb: int | None = None, log_level: str = "info",
                  journal: str | Path | None = None, serial: str | None = None,
                  control: str | None = None, romfs: bool = False) -> tuple[list[str], dict, str]:
    """(argv, env, cwd) that run the agent. For MicroPython the agent runs
    precompiled from build/mpy, with the heap capped at `heap_kb` (the
    board's budget): over budget it fails with MemoryError, as a board would.
    The agent runs from the repository root, so the paths the caller gave
    (relative to the caller's directory) are handed over absolute."""
    args = ["--board", os.path.abspath(board_path), "--site", os.path.abspath(site_path), "--log-level", log_level]
    if server:
        args += ["--server", server]
    if control:
        args += ["--control", control]
    if emulator:
        args += ["--emulator", f"{emulator[0]}:{emulator[1]}"]
    if journal:
        args += ["--journal", os.path.abspath(journal)]
    if serial:
        args += ["--serial", serial]
    if runtime == "micropython":
        deploy = mpy.build_deploy()
        argv = [mpy.tool("micropython")]
        if romfs:
            image = mpy.build_romfs()
            if heap_kb:   # the image is read into the heap first: the agent gets heap_kb beside it
                argv += ["-X", f"heapsize={heap_kb + -(-image.stat().st_size // 1024) + 1}k"]
            # Not MICROPYPATH=build/mpy: the agent comes from the image or not at all
            return argv + [str(ROMBOOT), str(image)] + args, mpy.micropython_env(), str(ROOT)
        if heap_kb:
            argv += ["-X", f"heapsize={heap_kb}k"]
        return argv + ["-m", "agent.main"] + args, mpy.micropython_env(deploy), str(ROOT)
    if runtime == "cpython":
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        return [sys.executable, "-m", "agent.main"] + args, env, str(ROOT)
    raise ValueError(f"runtime must be one of {', '.join(RUNTIMES)}")


async def stop_agent(proc: asyncio.subprocess.Process, timeout: float = STOP_TIMEOUT_S) -> int:
    if proc.returncode is None:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
    return proc.returncode


class BoardSession:
    """An agent process plus, for an emulated board, the emulators it drives.
    `proc` is the current agent process (a new one after each restart)."""

    def __init__(self, argv: list[str], env: dict, cwd: str, on_line: Callable[[str], object],
                 emulator: BoardEmulator | None, reader: ReaderEmulator | None) -> None:
        self.emulator = emulator
        self.reader = reader      # the fingerprint module emulator, if the board has one
        self.restarts = 0         # times the agent asked to be restarted
        self.proc: asyncio.subprocess.Process | None = None
        self._argv, self._env, self._cwd, self._on_line = argv, env, cwd, on_line
        self._stopping = False
        self._ended = asyncio.Event()
        self._watch: asyncio.Task | None = None

    async def _spawn(self) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            *self._argv, env=self._env, cwd=self._cwd, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)

    async def start(self) -> BoardSession:
        self.proc = await self._spawn()
        self._watch = asyncio.create_task(self._run())
        return self

    async def _run(self) -> None:
        try:
            while True:
                async for raw in self.proc.stdout:
                    self._on_line(raw.decode("utf-8", "replace").rstrip("\n"))
                rc = await self.proc.wait()
                if rc != RESTART_EXIT or self._stopping:
                    return
                self.restarts += 1
                self.proc = await self._spawn()
                if self._stopping:  # stop() came while it started: it must not outlive the session
                    await stop_agent(self.proc)
                    return
        finally:
            self._ended.set()

    async def wait(self) -> int:
        """Until the agent ends for good (a restart is not an end)."""
        await self._ended.wait()
        return self.proc.returncode

    @property
    def ended(self) -> bool:
        return self._ended.is_set()

    async def stop(self) -> int | None:
        self._stopping = True
        rc = await stop_agent(self.proc) if self.proc else None
        if self._watch is not None:
            try:
                await asyncio.wait_for(self._ended.wait(), 2)
            except TimeoutError:
                self._watch.cancel()
        if self.emulator:
            await self.emulator.stop()
        if self.reader:
            self.reader.stop()
        return rc


def _emulator_error(board_path: str | Path, host: str, port: int, e: OSError) -> ConfigError:
    """The board file's field to blame when the emulator cannot listen."""
    if isinstance(e, socket.gaierror):
        field, why = "emulator.host", "is not a name this host can resolve"
    elif e.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
        field, why = "emulator.host", "is not an address of this host"
    elif e.errno in (errno.EADDRINUSE, errno.EACCES):
        field, why = "emulator.port", "is taken or not allowed (another demo or run?)"
    else:
        field, why = "emulator", "cannot be listened on"
    return ConfigError(str(board_path), field, f"{why}: the emulator cannot listen on {host}:{port} ({e})")


async def start_emulator(board: dict, board_path: str | Path, port: int | None = None,
                         visitor: bool = False) -> BoardEmulator:
    """The pins and sensors of an emulated board, listening where the board
    file says (or on `port`); a board the host cannot serve raises
    ConfigError naming the field."""
    host = board["emulator"]["host"]
    port = board["emulator"]["port"] if port is None else port
    try:
        return await BoardEmulator(board, host, port, visitor=visitor).start()
    except OSError as e:
        raise _emulator_error(board_path, host, port, e) from None


async def start_board(board_path: str | Path, site_path: str | Path, runtime: str | None = None,
                      server: str | None = None, heap_kb: int | None = None,
                      on_line: Callable[[str], object] = print, emulator_port: int | None = None,
                      visitor: bool = False, log_level: str = "info",
                      journal: str | Path | None = None, control: str | None = None,
                      romfs: bool = False) -> BoardSession:
    """Start the agent for `board_path`; returns a BoardSession. Every line
    the agent prints goes to on_line(str). A board the host cannot serve
    (its emulator's address) raises ConfigError naming the field."""
    board = load_board(str(board_path))
    if board["hal"] == "esp32":
        # No host has an ESP32's pins, radio or watchdog (machine.Pin,
        # network.WLAN): an agent started here would fail on its first pin.
        raise ConfigError(str(board_path), "hal", "'esp32' runs on an ESP32, not on this host: copy the agent "
                          "to the board (mpremote), or run the board's peripherals emulated (hal emulated)")
    runtime = runtime or board["runtimes"][0]
    emulator = reader = None
    emu_addr = None
    try:
        if board["hal"] == "emulated":
            emulator = await start_emulator(board, board_path, emulator_port, visitor)
            emu_addr = (emulator.host, emulator.port)
        if any(p["type"] == "fingerprint" and p["port"] == "emulated" for p in board["peripherals"]):
            reader = ReaderEmulator().start()
        if heap_kb is None and runtime == "micropython":
            heap_kb = board["heap_kb"]
        argv, env, cwd = agent_command(runtime, board_path, site_path, server=server, emulator=emu_addr,
                                       heap_kb=heap_kb, log_level=log_level, journal=journal, romfs=romfs,
                                       serial=reader.path if reader else None, control=control)
        return await BoardSession(argv, env, cwd, on_line, emulator, reader).start()
    except BaseException:
        if emulator:
            await emulator.stop()
        if reader:
            reader.stop()
        raise
