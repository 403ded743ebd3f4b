# An admin commands an XML terminal (per runtime): unlock travels as
# LockControl, the relay energises, the terminal's Response comes back to the
# admin as a command_result event.
from e2e_support import eventually, terminal_with_admin
from test_terminal import DEVICE, _board


async def test_unlock_an_xml_terminal_from_the_cloud(runtime, tmp_path):
    async with terminal_with_admin(runtime, tmp_path, _board(tmp_path, 200), DEVICE, "cloud_001",
                                   "xml_ws") as t:
        result = await t.admin.command("unlock", cmd_id="x1", device=DEVICE)
        assert result["payload"] == {"id": "x1", "command": "LockControl", "ok": True}
        await eventually(lambda: t.session.emulator.relay_energised(), timeout=5)
