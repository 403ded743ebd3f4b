
import aiohttp
import pytest
from e2e_support import DEVICE, TOKEN, Admin, Agent

from host_tools.bench import start_bench


@pytest.fixture(params=["micropython", "cpython"])
def runtime(request):
    return request.param


@pytest.fixture
async def bench(tmp_path):
    b = await start_bench("127.0.0.1", 0, str(tmp_path / "bench.sqlite3"))
    b.store.add_device(DEVICE, TOKEN)
    yield b
    await b.stop()


@pytest.fixture
async def agent():
    a = Agent()
    yield a
    if a.session:
        await a.session.stop()
    print("---- agent output ----\n" + a.output())


@pytest.fixture
async def admin(bench):
    async with aiohttp.ClientSession() as s:
        ws = await s.ws_connect(bench.url)
        await ws.send_json({"type": "subscribe", "role": "admin"})
        yield Admin(ws)
        await ws.close()

