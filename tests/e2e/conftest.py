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


@pytest.fixture
async def virtual_board(tmp_path):
    """Factory: `await virtual_board(**kwargs)` -> a started VirtualBoard
    (host_tools/virtual_board.py) of boards/virtual-esp32.json, its image in
    tmp_path, its emulator on a free port unless told; stopped at the end."""
    from host_tools.paths import BOARDS
    from host_tools.virtual_board import VirtualBoard
    boards = []

    async def start(board=BOARDS / "virtual-esp32.json", image=None, **kwargs):
        kwargs.setdefault("emulator_port", 0)
        vb = VirtualBoard(board, image or tmp_path / f"flash{len(boards)}.img", **kwargs)
        boards.append(vb)
        return await vb.start()

    yield start
    for vb in boards:
        await vb.stop()
