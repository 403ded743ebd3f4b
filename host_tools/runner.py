# Starts the agent as a process on this host, under MicroPython's unix port
# or CPython: the same agent/ code that runs on an ESP32 or a Raspberry Pi.
import asyncio
import sys

from host_tools import mpy
from host_tools.paths import ROOT

RUNTIMES = ("micropython", "cpython")


def agent_command(runtime, board_path, site_path, server=None, emulator=None,
                  heap_kb=None, log_level="info", journal=None, serial=None):
    """(argv, env, cwd) that run the agent. For MicroPython the agent runs
    precompiled from build/mpy, with the heap capped at `heap_kb` (the
    board's budget): over budget it fails with MemoryError, as a board would."""
    args = ["--board", str(board_path), "--site", str(site_path), "--log-level", log_level]
    if server:
        args += ["--server", server]
    if emulator:
        args += ["--emulator", "%s:%d" % emulator]
    if journal:
        args += ["--journal", str(journal)]
    if serial:
        args += ["--serial", serial]
    if runtime == "micropython":
        deploy = mpy.build_deploy()
        argv = [mpy.tool("micropython")]
        if heap_kb:
            argv += ["-X", "heapsize=%dk" % heap_kb]
        return argv + ["-m", "agent.main"] + args, mpy.micropython_env(deploy), str(ROOT)
    if runtime == "cpython":
        import os
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        return [sys.executable, "-m", "agent.main"] + args, env, str(ROOT)
    raise ValueError("runtime must be one of %s" % ", ".join(RUNTIMES))


async def start_agent(runtime, board_path, site_path, **kw):
    argv, env, cwd = agent_command(runtime, board_path, site_path, **kw)
    return await asyncio.create_subprocess_exec(
        *argv, env=env, cwd=cwd, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)


async def stop_agent(proc, timeout=5.0):
    if proc.returncode is None:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), timeout)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()
    return proc.returncode


class BoardSession:
    """An agent process plus, for an emulated board, the emulator it drives.
    What `doorlink run`, `doorlink demo` and the end-to-end tests start."""

    def __init__(self, proc, emulator, pump, reader=None):
        self.proc = proc
        self.emulator = emulator
        self.reader = reader  # the fingerprint reader emulator, if the board has one
        self._pump = pump

    async def wait(self):
        rc = await self.proc.wait()
        await self._pump
        return rc

    async def stop(self):
        rc = await stop_agent(self.proc)
        try:
            await asyncio.wait_for(self._pump, 2)
        except asyncio.TimeoutError:
            self._pump.cancel()
        if self.emulator:
            await self.emulator.stop()
        if self.reader:
            self.reader.stop()
        return rc


async def start_board(board_path, site_path, runtime=None, server=None, heap_kb=None,
                      on_line=print, emulator_port=None, visitor=False, log_level="info",
                      journal=None):
    """Start the agent for `board_path`; returns a BoardSession. Every line
    the agent prints goes to on_line(str)."""
    from agent.config import load_board
    from host_tools.emulator import BoardEmulator

    board = load_board(str(board_path))
    runtime = runtime or board["runtimes"][0]
    emulator = None
    emu_addr = None
    if board["hal"] == "emulated":
        port = board["emulator"]["port"] if emulator_port is None else emulator_port
        emulator = await BoardEmulator(board, board["emulator"]["host"], port,
                                       visitor=visitor).start()
        emu_addr = (emulator.host, emulator.port)
    reader = None
    if any(p["type"] == "fingerprint" and p["port"] == "emulated" for p in board["peripherals"]):
        from host_tools.zfm_emulator import ReaderEmulator
        reader = ReaderEmulator()
        reader.start()
    if heap_kb is None and runtime == "micropython":
        heap_kb = board["heap_kb"]
    try:
        proc = await start_agent(runtime, board_path, site_path, server=server,
                                 emulator=emu_addr, heap_kb=heap_kb, log_level=log_level,
                                 journal=journal, serial=reader.path if reader else None)
    except BaseException:
        if emulator:
            await emulator.stop()
        if reader:
            reader.stop()
        raise

    async def pump():
        async for raw in proc.stdout:
            on_line(raw.decode("utf-8", "replace").rstrip("\n"))

    return BoardSession(proc, emulator, asyncio.create_task(pump()), reader)
