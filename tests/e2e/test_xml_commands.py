# An admin commands an XML terminal (per runtime): unlock travels as
# LockControl, the relay energises, the terminal's Response comes back to the
# admin as a command_result event.
from e2e_support import eventually, terminal_with_admin
from test_terminal import DEVICE


async def test_unlock_an_xml_terminal_from_the_cloud(runtime, tmp_path):
    async with terminal_with_admin(runtime, tmp_path, DEVICE, "cloud_001", "xml_ws", poll_ms=200) as t:
        result = await t.admin.command("unlock", cmd_id="x1", device=DEVICE)
        # the command the admin sent, answered with what the terminal reported
        assert result["payload"] == {"id": "x1", "command": "unlock", "operation": "LockControl", "ok": True,
                                     "result": {"duration_ms": "3000", "lock": "unlocked"}}
        await eventually(lambda: t.session.emulator.relay_energised(), timeout=5)
