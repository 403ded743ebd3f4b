# The CloudSolution 3.0 HTTP uplink end to end, per runtime: door events
# travel as enrollid-0 records, the bench's cloudtime corrects the clock.
from e2e_support import DEVICE, eventually, write_site


async def test_door_events_reach_the_bench_over_http(runtime, bench, agent, tmp_path):
    url = bench.http_url
    await agent.start(runtime, write_site(tmp_path, url, uplink="http", heartbeat_s=1))
    await eventually(lambda: "registered as" in agent.output(), timeout=15)
    emu = agent.session.emulator
    emu.set_door_open(True)
    await eventually(lambda: bench.store.event_rows(DEVICE), timeout=15)
    emu.set_door_open(False)
    rows = await eventually(lambda: len(bench.store.event_rows(DEVICE)) >= 2 and bench.store.event_rows(DEVICE),
                            timeout=15)
    assert [r["payload"]["event"] for r in rows[:2]] == [1, 0]  # opened, closed
    assert all(r["payload"]["enrollid"] == 0 for r in rows[:2])
    assert "MemoryError" not in agent.output()
