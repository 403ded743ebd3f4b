# Helpers for the end-to-end tests: an admin client, bounded polling, a
# terminal with its bench and an admin. Systems are started through the one
# rig (host_tools/rig.py). (The fixtures that use these are in conftest.py;
# tests import helpers from here, never from a conftest: tests/host has one
# too, and the module name would clash.)
import asyncio
import contextlib
import json
import os
import sys

import aiohttp

from host_tools.paths import BOARDS
from host_tools.rig import Rig

DEVICE = "e2e-door"
TOKEN = "tok_e2e"
BOARD = BOARDS / "emulated.json"
# What every e2e site file starts from: fast telemetry, a short heartbeat.
SITE = {"telemetry_interval_s": 1, "heartbeat_s": 5}


class Admin:
    """An admin dashboard on the bench's /ws, collecting what it receives."""

    def __init__(self, ws):
        self.ws = ws

    async def next(self, pred, timeout=15):
        async def scan():
            async for msg in self.ws:
                data = json.loads(msg.data)
                if pred(data):
                    return data
            raise AssertionError("admin socket closed")
        return await asyncio.wait_for(scan(), timeout)

    async def command(self, name, payload=None, cmd_id="c1", device=DEVICE, timeout=15):
        await self.ws.send_json({"type": "command", "device_id": device, "command": name,
                                 "payload": payload or {}, "id": cmd_id})
        return await self.next(lambda m: m.get("event_type") == "command_result"
                               and m["payload"].get("id") == cmd_id, timeout)


@contextlib.asynccontextmanager
async def admin_of(bench):
    """An admin subscribed to `bench`."""
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(bench.url)
        await ws.send_json({"type": "subscribe", "role": "admin"})
        try:
            yield Admin(ws)
        finally:
            await ws.close()


async def run_command(*argv, timeout=60, env=None):
    """A command as a technician runs it, in its own process: (exit code,
    stdout, stderr); killed after `timeout` s, which its stderr then says."""
    proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE, env=env)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        out, err = await proc.communicate()
        err += b"\n[killed after %ds]" % timeout
    return proc.returncode, out.decode(), err.decode()


async def doorlink_control(device, *args):
    """`doorlink control DEVICE ...` against a loopback bench, as an
    anonymous admin (no token from the caller's environment)."""
    return await run_command(sys.executable, "-m", "host_tools.cli", "control", device, *args,
                             env={**os.environ, "DOORLINK_ADMIN_TOKEN": ""})


async def eventually(check, timeout=10, every=0.1):
    """Poll `check()` until truthy (bounded in time); returns its value."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        got = check()
        if got:
            return got
        if loop.time() > end:
            raise AssertionError("condition not met within %ss" % timeout)
        await asyncio.sleep(every)


class Terminal:
    """An attendance terminal on the emulated board, its bench, and an admin
    subscribed to the bench; see terminal_with_admin()."""

    def __init__(self, rig, admin):
        self.rig, self.admin = rig, admin
        self.bench, self.session, self.lines = rig.bench, rig.session, rig.lines


@contextlib.asynccontextmanager
async def terminal_with_admin(runtime, tmp_path, device, token, uplink, poll_ms):
    """Bench + agent on the attendance board (fingerprint emulated, polled
    every `poll_ms`) + an admin who has seen the device come online. The
    agent's last lines are printed on exit."""
    rig = Rig(tmp_path, board="emulated-attendance", runtime=runtime, device_id=device, token=token,
              uplink=uplink, site={"heartbeat_s": 5}, peripherals={"fingerprint": {"poll_ms": poll_ms}})
    async with rig:
        bench = await rig.start_bench()
        await rig.start_agent()
        try:
            async with admin_of(bench) as admin:
                await admin.next(lambda m: m.get("type") == "device_status" and m["status"] == "online",
                                 timeout=20)
                yield Terminal(rig, admin)
        finally:
            print(rig.output(30))
