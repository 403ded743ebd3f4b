import asyncio
import json

import aiohttp
import pytest

from host_tools.bench import start_bench
from host_tools.paths import BOARDS
from host_tools.runner import start_board

DEVICE = "e2e-door"
TOKEN = "tok_e2e"
BOARD = BOARDS / "emulated.json"


@pytest.fixture(params=["micropython", "cpython"])
def runtime(request):
    return request.param


@pytest.fixture
async def bench(tmp_path):
    b = await start_bench("127.0.0.1", 0, str(tmp_path / "bench.sqlite3"))
    b.store.add_device(DEVICE, TOKEN)
    yield b
    await b.stop()


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


@pytest.fixture
async def agent():
    a = Agent()
    yield a
    if a.session:
        await a.session.stop()
    print("---- agent output ----\n" + a.output())


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


@pytest.fixture
async def admin(bench):
    async with aiohttp.ClientSession() as s:
        ws = await s.ws_connect(bench.url)
        await ws.send_json({"type": "subscribe", "role": "admin"})
        yield Admin(ws)
        await ws.close()


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
