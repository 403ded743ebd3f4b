# An admin commands an XML terminal (per runtime): unlock travels as
# LockControl, the relay energises, the terminal's Response comes back to the
# admin as a command_result event.
import json

import aiohttp

from conftest import Admin, eventually
from host_tools.bench import start_bench
from host_tools.runner import start_board
from test_terminal import DEVICE, _board


async def test_unlock_an_xml_terminal_from_the_cloud(runtime, tmp_path):
    bench = await start_bench("127.0.0.1", 0, str(tmp_path / "bench.sqlite3"))
    bench.store.add_device(DEVICE, "cloud_001")
    site = tmp_path / "site.json"
    site.write_text(json.dumps({"server": bench.url, "device_id": DEVICE, "token": "cloud_001",
                                "uplink": "xml_ws", "heartbeat_s": 5}))
    lines = []
    session = await start_board(_board(tmp_path, 200), site, runtime=runtime, emulator_port=0,
                                on_line=lines.append, journal=tmp_path / "journal")
    try:
        async with aiohttp.ClientSession() as http:
            ws = await http.ws_connect(bench.url)
            await ws.send_json({"type": "subscribe", "role": "admin"})
            admin = Admin(ws)
            await admin.next(lambda m: m.get("type") == "device_status" and m["status"] == "online", timeout=20)
            result = await admin.command("unlock", cmd_id="x1", device=DEVICE)
            assert result["payload"] == {"id": "x1", "command": "LockControl", "ok": True}
            await eventually(lambda: session.emulator.relay_energised(), timeout=5)
            await ws.close()
    finally:
        await session.stop()
        await bench.stop()
        print("\n".join(lines[-20:]))
