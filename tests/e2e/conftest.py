# The end-to-end tests use the root conftest's `rig` and `bench`; here
# what every e2e rig starts from, the runtimes, and an admin.
import pytest

from e2e_support import DEVICE, SITE, TOKEN, admin_of


@pytest.fixture(params=["micropython", "cpython"])
def runtime(request):
    return request.param


@pytest.fixture
def rig_options():
    """The e2e device, its token and site overrides (fast telemetry, a
    short heartbeat), unless the test module names its own."""
    return {"device_id": DEVICE, "token": TOKEN, "site": SITE}


@pytest.fixture
async def admin(bench):
    async with admin_of(bench) as a:
        yield a
