# Fixtures shared by the host-side tests (the bench itself is the root
# conftest's `bench`, holding the test module's BENCH_DEVICES).
import aiohttp
import pytest


@pytest.fixture
async def session():
    async with aiohttp.ClientSession() as s:
        yield s
