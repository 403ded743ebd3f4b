# Enrolment and deletion from the cloud, per runtime: an admin command runs
# the enrol flow on the emulated sensor (two captures of the same finger),
# the new user can punch, and both admin actions reach the bench as logs.
import asyncio
import json

import aiohttp

from agent.codecs import zfm
from conftest import Admin, eventually
from host_tools.bench import start_bench
from host_tools.runner import start_board
from test_terminal import DEVICE, _board, _press


async def test_enrol_punch_delete_from_the_cloud(runtime, tmp_path):
    bench = await start_bench("127.0.0.1", 0, str(tmp_path / "bench.sqlite3"))
    bench.store.add_device(DEVICE, "cloud_001")
    site = tmp_path / "site.json"
    site.write_text(json.dumps({"server": bench.url, "device_id": DEVICE, "token": "cloud_001",
                                "uplink": "json_ws", "heartbeat_s": 5}))
    lines = []
    session = await start_board(_board(tmp_path, 50), site, runtime=runtime, emulator_port=0,
                                on_line=lines.append, journal=tmp_path / "journal")
    reader = session.reader
    try:
        async with aiohttp.ClientSession() as http:
            ws = await http.ws_connect(bench.url)
            await ws.send_json({"type": "subscribe", "role": "admin"})
            admin = Admin(ws)
            await admin.next(lambda m: m.get("type") == "device_status" and m["status"] == "online", timeout=20)
            await eventually(lambda: "module ready" in "\n".join(lines), timeout=20)

            await ws.send_json({"type": "command", "device_id": DEVICE, "command": "enrol",
                                "payload": {"user": 42}, "id": "e1"})
            # The person puts the finger on, lifts it, puts it on again.
            stores = reader.answered(zfm.STORE)
            for _ in range(2):
                reader.place(42)
                await asyncio.sleep(0.6)
                reader.lift()
                await asyncio.sleep(0.6)
            await asyncio.to_thread(reader.wait_answered, zfm.STORE, stores + 1, 15.0)
            result = await admin.next(lambda m: m.get("event_type") == "command_result"
                                      and m["payload"].get("id") == "e1", timeout=20)
            assert result["payload"]["ok"] is True, result
            await _press(reader, 42, reader.answered(zfm.SEARCH))
            punch = await admin.next(lambda m: m.get("event_type") == "punch", timeout=20)
            assert punch["payload"]["user"] == "42"

            deleted = await admin.command("delete_user", {"user": 42}, cmd_id="d1", device=DEVICE)
            assert deleted["payload"]["ok"] is True
            logs = await eventually(lambda: len(bench.store.event_rows(DEVICE, "admin")) >= 2 and
                                    bench.store.event_rows(DEVICE, "admin"), timeout=20)
            assert [(r["payload"]["action"], r["payload"]["user"]) for r in logs] == [
                ("EnrollFP", "42"), ("DeleteFP", "42")]
            await ws.close()
    finally:
        await session.stop()
        await bench.stop()
        print("\n".join(lines[-30:]))
