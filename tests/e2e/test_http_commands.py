# CloudSolution server commands end to end, per runtime: an admin's command
# waits at the bench for the device's next request, rides on the reply, runs
# on the device, and its answer comes back to the admin as a command_result.
# A reboot restarts the agent (as a board would come back) with its journal.
import time

from agent.codecs.values import wall_epoch

from e2e_support import DEVICE, eventually


async def test_http_device_obeys_commands_that_ride_on_replies(runtime, rig, bench, admin):
    await rig.start_agent(rig.write_site(bench.http_url, uplink="http", heartbeat_s=0.5), runtime=runtime)
    await admin.next(lambda m: m.get("type") == "device_status" and m["status"] == "online", timeout=20)
    emu = rig.session.emulator

    opened = await admin.command("unlock", cmd_id="h1")
    assert opened["payload"]["ok"] is True and opened["payload"]["command"] == "unlock"
    assert opened["payload"]["result"]["lock"] == "unlocked"
    await eventually(lambda: emu.relay_energised(), timeout=5)

    now = (await admin.command("get_time", cmd_id="h2"))["payload"]
    assert now["ok"] and abs(wall_epoch(now["result"]["time"]) - time.time()) < 60  # site gmt 0

    ahead = int(time.time()) + 3 * 3600
    moved = (await admin.command("set_time", {"epoch": ahead}, cmd_id="h3"))["payload"]
    assert moved["ok"] and abs(wall_epoch(moved["result"]["time"]) - ahead) < 60

    emu.set_door_open(True)  # a door event to resend: getnewlog sends everything unacknowledged again
    await eventually(lambda: bench.store.event_rows(DEVICE, "door_opened"), timeout=10)
    resent = (await admin.command("resend", cmd_id="h4"))["payload"]
    assert resent["ok"] and resent["result"]["count"] >= 0

    # No CloudSolution word for it: refused at the bench, never queued.
    await admin.ws.send_json({"type": "command", "device_id": DEVICE, "command": "enrol",
                              "payload": {"user": 1}, "id": "h5"})
    refused = await admin.next(lambda m: m.get("type") == "error")
    assert "no CloudSolution form" in refused["message"]
    assert len(bench.store.event_rows(DEVICE, "door_opened")) == 1  # stored once, resend or not


async def test_reboot_restarts_the_agent_with_its_journal(runtime, rig, bench, admin):
    await rig.start_agent(rig.write_site(bench.http_url, uplink="http", heartbeat_s=0.5), runtime=runtime)
    await admin.next(lambda m: m.get("type") == "device_status" and m["status"] == "online", timeout=20)
    boots = rig.output().count("doorlink ")
    emu = rig.session.emulator
    emu.set_door_open(True)
    await eventually(lambda: bench.store.event_rows(DEVICE, "door_opened"), timeout=10)
    emu.set_door_open(False)
    before = await eventually(lambda: bench.store.event_rows(DEVICE, "door_closed"), timeout=10)

    result = await admin.command("reboot", cmd_id="r1")
    assert result["payload"]["ok"] is True
    await eventually(lambda: rig.session.restarts == 1, timeout=15)
    await eventually(lambda: rig.output().count("doorlink ") > boots and
                     rig.output().count("registered as") >= 2, timeout=20)
    assert "restarting" in rig.output()
    # After the reboot: journaled and delivered by the new process, with an
    # id after the old ones. (An opening: a door the new process first sees
    # closed is no event, however the race with its first poll goes.)
    emu.set_door_open(True)
    rows = await eventually(lambda: bench.store.event_rows(DEVICE, "door_opened")[1:], timeout=15)
    assert rows[0]["record_id"] > before[0]["record_id"]
    assert rig.session.proc.returncode is None
