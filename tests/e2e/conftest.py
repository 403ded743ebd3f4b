import pytest

from host_tools.rig import Rig

from e2e_support import DEVICE, SITE, TOKEN, admin_of


@pytest.fixture(params=["micropython", "cpython"])
def runtime(request):
    return request.param


@pytest.fixture
async def rig(tmp_path):
    """The system under test (host_tools/rig.py): tests start its bench and
    its agent (start_agent(runtime=...)); everything stops at the end, and
    the agent's output is printed for a failure's report."""
    r = Rig(tmp_path, device_id=DEVICE, token=TOKEN, site=SITE)
    yield r
    await r.stop()
    print("---- agent output ----\n" + r.output(None))


@pytest.fixture
async def bench(rig):
    return await rig.start_bench()


@pytest.fixture
async def admin(bench):
    async with admin_of(bench) as a:
        yield a
