# Fixtures shared by the host-side tests of the bench cloud.
import asyncio

import aiohttp
import pytest

from host_tools.bench import add_device, start_bench

TIMEOUT = 5


@pytest.fixture
async def bench(tmp_path, request):
    """A real bench on 127.0.0.1 (port 0) with a fresh SQLite file, holding
    the test module's BENCH_DEVICES ({device_id: token}); `.events` collects
    what its observer saw, `.db_path` is the SQLite file."""
    db = tmp_path / "bench.sqlite3"
    for device_id, token in getattr(request.module, "BENCH_DEVICES", {}).items():
        add_device(db, device_id, token)
    events = []
    b = await start_bench(port=0, db_path=str(db), observer=lambda kind, data: events.append((kind, data)))
    b.db_path = db
    b.events = events
    try:
        yield b
    finally:
        await asyncio.wait_for(b.stop(), TIMEOUT)


@pytest.fixture
async def session():
    async with aiohttp.ClientSession() as s:
        yield s
