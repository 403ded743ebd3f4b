# A door's lockdown across a restart, end to end per runtime: the cloud
# locks the door down, the agent process ends (a crash: no clean stop), and
# the next one comes back locked down - before its first poll no grant
# opens it, and the cloud hears "door_mode locked by restart".
from e2e_support import DEVICE, eventually


def _modes(bench):
    return [r["payload"] for r in bench.store.event_rows(DEVICE, "door_mode")]


async def test_a_lockdown_survives_a_restart_and_the_cloud_hears_it(runtime, rig, bench, admin):
    await rig.start_agent(runtime=runtime)
    await rig.wait_registered(timeout=20)
    answer = (await admin.command("door_mode", {"door": "front", "mode": "locked"}, cmd_id="m1"))["payload"]
    assert answer["ok"] and answer["result"] == {"mode": "locked"}, answer
    await eventually(lambda: {"door": "front", "mode": "locked", "by": "cloud"} in _modes(bench))
    await rig.stop_agent()
    seen = len(rig.lines)
    await rig.start_agent(runtime=runtime)
    await rig.wait_for("registered as", timeout=20, after=seen)
    await eventually(lambda: {"door": "front", "mode": "locked", "by": "restart"} in _modes(bench))
    refused = (await admin.command("unlock", {"door": "front"}, cmd_id="u1"))["payload"]
    assert not refused["ok"] and "door_locked_down" in refused["error"], refused
    status = (await admin.command("status", cmd_id="s1"))["payload"]["result"]
    assert status["properties"]["front.mode"] == "locked"
    assert rig.session.emulator.relay_energised() is False
