# "No punch lost": records made while the cloud is down survive an agent
# killed mid-outage and all reach the bench exactly once when it returns.
import asyncio
import signal

from host_tools.journal_tool import pending_ids

from e2e_support import DEVICE, eventually

DOOR_CYCLES = 10


def _ids(store):
    rows = store.telemetry_rows(DEVICE) + store.event_rows(DEVICE)
    return [r["record_id"] for r in rows if r["record_id"] is not None]


async def test_outage_and_kill_lose_nothing(runtime, rig, bench, tmp_path):
    site = rig.write_site(telemetry_interval_s=1, heartbeat_s=1, backoff_base_s=0.2, backoff_cap_s=1)
    await rig.start_agent(site, runtime=runtime)
    emu = rig.session.emulator
    await eventually(lambda: bench.store.telemetry_rows(DEVICE), timeout=15)

    await rig.stop_bench()  # the cloud goes away
    # Each level held well beyond the door sensor's debounce (50 ms) and its
    # polls (every 50 ms), so that a loaded machine misses no opening.
    for _ in range(DOOR_CYCLES):
        emu.set_door_open(True)
        await asyncio.sleep(0.3)
        emu.set_door_open(False)
        await asyncio.sleep(0.3)
    await asyncio.sleep(1)
    rig.session.proc.send_signal(signal.SIGKILL)  # power cut, mid-outage
    await rig.stop_agent()
    killed_output = rig.output()

    bench = await rig.restart_bench()
    try:
        # Slow telemetry after the restart, so the link goes quiet at the end.
        site = rig.write_site(telemetry_interval_s=60, heartbeat_s=1, backoff_base_s=0.2, backoff_cap_s=1)
        await rig.start_agent(site, runtime=runtime)
        await eventually(lambda: len(bench.store.event_rows(DEVICE, "door_closed")) >= DOOR_CYCLES,
                         timeout=30)
        opened = bench.store.event_rows(DEVICE, "door_opened")
        assert len(opened) == DOOR_CYCLES
        # Every id the journal handed out is stored, once (the unique index
        # makes a second copy impossible; here we check nothing is missing).
        ids = _ids(bench.store)
        await eventually(lambda: set(range(1, max(_ids(bench.store)) + 1)) <= set(_ids(bench.store)),
                         timeout=15)
        ids = _ids(bench.store)
        assert len(ids) == len(set(ids))
        assert "journal holds" in rig.output()[len(killed_output):]  # the restart found the backlog
        # And the device's journal is empty once the link went quiet.
        folder = tmp_path / "journal" / DEVICE
        await eventually(lambda: not pending_ids(folder) or None, timeout=15)
        times = [r["device_time"] for r in opened]
        assert times == sorted(times) and all(isinstance(t, (int, float)) for t in times)
    finally:
        await rig.stop()
