# Enrolment and deletion from the cloud, per runtime: an admin command runs
# the enrol flow on the emulated sensor (two captures of the same finger),
# the new user can punch, and both admin actions reach the bench as logs.
import asyncio

from agent.codecs import zfm

from e2e_support import eventually, terminal_with_admin
from test_terminal import DEVICE, _press


async def test_enrol_punch_delete_from_the_cloud(runtime, tmp_path):
    async with terminal_with_admin(runtime, tmp_path, DEVICE, "cloud_001", "json_ws", poll_ms=50) as t:
        reader, admin = t.session.reader, t.admin
        await eventually(lambda: "module ready" in "\n".join(t.lines), timeout=20)

        await admin.ws.send_json({"type": "command", "device_id": DEVICE, "command": "enrol",
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
        store = t.bench.store
        logs = await eventually(lambda: len(store.event_rows(DEVICE, "admin_log")) >= 2 and
                                store.event_rows(DEVICE, "admin_log"), timeout=20)
        assert [(r["payload"]["action"], r["payload"]["user"]) for r in logs] == [
            ("EnrollFP", "42"), ("DeleteFP", "42")]
