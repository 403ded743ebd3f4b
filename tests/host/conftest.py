# Fixtures shared by the host-side tests (the bench itself is the root
# conftest's `bench`, holding the test module's BENCH_DEVICES).
import aiohttp
import pytest


@pytest.fixture
async def session():
    async with aiohttp.ClientSession() as s:
        yield s


# A Raspberry Pi's pins: gpiozero's own MockFactory, and the agent's hal on it
# (test_gpiozero_hal.py, test_wiegand_gpiozero.py).
@pytest.fixture
def factory():
    from gpiozero.pins.mock import MockFactory
    f = MockFactory()
    yield f
    f.close()


@pytest.fixture
def io(factory):
    from agent.hal.gpiozero_io import GpiozeroIO
    io = GpiozeroIO(pin_factory=factory)
    yield io
    io.close()
