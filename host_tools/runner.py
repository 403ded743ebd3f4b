# Starts the agent as a process on this host, under MicroPython's unix port
# or CPython: the same agent/ code that runs on an ESP32 or a Raspberry Pi.
import asyncio
import sys

from host_tools import mpy
from host_tools.paths import ROOT

RUNTIMES = ("micropython", "cpython")


def agent_command(runtime, board_path, site_path, server=None, emulator=None,
                  heap_kb=None, log_level="info"):
    """(argv, env, cwd) that run the agent. For MicroPython the agent runs
    precompiled from build/mpy, with the heap capped at `heap_kb` (the
    board's budget): over budget it fails with MemoryError, as a board would."""
    args = ["--board", str(board_path), "--site", str(site_path), "--log-level", log_level]
    if server:
        args += ["--server", server]
    if emulator:
        args += ["--emulator", "%s:%d" % emulator]
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
