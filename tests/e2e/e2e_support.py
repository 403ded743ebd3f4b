# Helpers for the end-to-end tests: site files, the agent process, an admin
# client, bounded polling, a terminal with its bench. (The fixtures that use
# them are in conftest.py; tests import helpers from here, never from a
# conftest: tests/host has one too, and the module name would clash.)
import asyncio
import contextlib
import json

import aiohttp

from host_tools.bench import start_bench
from host_tools.paths import BOARDS
from host_tools.runner import start_board

DEVICE = "e2e-door"
TOKEN = "tok_e2e"
BOARD = BOARDS / "emulated.json"


def write_site(tmp_path, server, **over):
    site = {"server": server, "device_id": DEVICE, "token": TOKEN,
            "telemetry_interval_s": 0.5, "heartbeat_s": 5}
    site.update(over)
    path = tmp_path / "site.json"
    path.write_text(json.dumps(site))
    return path


class Agent:
    """A running agent on the emulated board; its output kept for failures."""

    def __init__(self):
        self.lines = []
        self.session = None

    async def start(self, runtime, site, **kw):
        # The journal lives beside the site file unless a test says otherwise.
        kw.setdefault("journal", site.parent / "journal")
        self.session = await start_board(BOARD, site, runtime=runtime, emulator_port=0,
                                         on_line=self.lines.append, **kw)
        return self

    def output(self):
        return "\n".join(self.lines)


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

    async def command(self, name, payload=None, cmd_id="c1", device=DEVICE):
        await self.ws.send_json({"type": "command", "device_id": device, "command": name,
                                 "payload": payload or {}, "id": cmd_id})
        return await self.next(lambda m: m.get("event_type") == "command_result"
                               and m["payload"].get("id") == cmd_id)


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

    def __init__(self, bench, session, admin, lines):
        self.bench, self.session, self.admin, self.lines = bench, session, admin, lines


@contextlib.asynccontextmanager
async def terminal_with_admin(runtime, tmp_path, board, device, token, uplink):
    """Bench + agent on `board` (fingerprint emulated) + an admin who has seen
    the device come online. The agent's last lines are printed on exit."""
    bench = await start_bench("127.0.0.1", 0, str(tmp_path / "bench.sqlite3"))
    bench.store.add_device(device, token)
    site = tmp_path / "site.json"
    site.write_text(json.dumps({"server": bench.url, "device_id": device, "token": token,
                                "uplink": uplink, "heartbeat_s": 5}))
    lines = []
    session = await start_board(board, site, runtime=runtime, emulator_port=0,
                                on_line=lines.append, journal=tmp_path / "journal")
    try:
        async with aiohttp.ClientSession() as http:
            ws = await http.ws_connect(bench.url)
            await ws.send_json({"type": "subscribe", "role": "admin"})
            admin = Admin(ws)
            await admin.next(lambda m: m.get("type") == "device_status" and m["status"] == "online",
                             timeout=20)
            yield Terminal(bench, session, admin, lines)
            await ws.close()
    finally:
        await session.stop()
        await bench.stop()
        print("\n".join(lines[-30:]))
