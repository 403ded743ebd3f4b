# The CloudSolution 3.0 HTTP uplink end to end, per runtime: door events
# travel as enrollid-0 records, the bench's cloudtime corrects the clock.
from e2e_support import DEVICE, eventually


async def test_door_events_reach_the_bench_over_http(runtime, rig, bench):
    await rig.start_agent(rig.write_site(bench.http_url, uplink="http", heartbeat_s=1), runtime=runtime)
    await rig.wait_registered(timeout=15)
    emu = rig.session.emulator
    emu.set_door_open(True)
    await eventually(lambda: bench.store.event_rows(DEVICE), timeout=15)
    emu.set_door_open(False)
    rows = await eventually(lambda: bench.store.event_rows(DEVICE, "door_closed") and bench.store.event_rows(DEVICE),
                            timeout=15)
    # opened, closed; between them door_forced (5) when the agent had seen
    # the door shut before it opened (nobody unlocked it)
    assert [r["payload"]["event"] for r in rows if r["payload"]["event"] != 5] == [1, 0]
    assert all(r["payload"]["enrollid"] == 0 for r in rows)
    assert "MemoryError" not in rig.output()
