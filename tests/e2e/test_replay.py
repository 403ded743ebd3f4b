# Backlog replay after an outage: oldest first, and a live command is not
# stuck behind it.
import time

import aiohttp

from host_tools.chaos import FaultProxy
from host_tools.journal_tool import pending_ids

from e2e_support import DEVICE, Admin, eventually

BACKLOG = 300


def _rows(store):
    return store.telemetry_rows(DEVICE) + store.event_rows(DEVICE)


async def test_unlock_lands_promptly_during_replay(runtime, rig, tmp_path, figure):
    bench = await rig.start_bench()
    await rig.stop_bench()  # the cloud is down from the start: everything backs up
    proxy = await FaultProxy("127.0.0.1", bench.port).start()
    proxy.throttle(30_000)  # a slow uplink, so the replay takes a while
    # The outage's backlog, written by the agent's own Journal class (a
    # sensor may not sample faster than once a second: waiting for 300
    # samples would take five minutes).
    from agent.journal import Journal
    journal = rig.journal / DEVICE
    j = Journal(str(journal), max_bytes=64 * 1024, segment_bytes=4096)
    for _ in range(0, BACKLOG, 50):
        j.append_many([("telemetry", None, {"temperature": 21.5, "humidity": 40}, None)] * 50)
    j.close()
    site = rig.write_site("ws://127.0.0.1:%d/ws" % proxy.port, telemetry_interval_s=1,
                          heartbeat_s=2, backoff_base_s=0.2, backoff_cap_s=0.5)
    await rig.start_agent(site, runtime=runtime)
    assert len(pending_ids(journal)) >= BACKLOG

    bench = await rig.restart_bench()
    try:
        async with aiohttp.ClientSession() as s:
            ws = await s.ws_connect(bench.url)
            await ws.send_json({"type": "subscribe", "role": "admin"})
            admin = Admin(ws)
            await admin.next(lambda m: m.get("type") == "device_status" and m["status"] == "online", timeout=20)
            sent = time.monotonic()
            result = await admin.command("unlock", {"duration_ms": 500}, cmd_id="live-1")
            latency = time.monotonic() - sent
            stored_then = len(_rows(bench.store))
            assert result["payload"]["ok"] is True
            assert stored_then < BACKLOG, "the replay was already over: the test proves nothing"
            assert latency < 3.0, "unlock waited %.1fs behind the replay" % latency
            await eventually(lambda: len(_rows(bench.store)) >= BACKLOG, timeout=90, every=0.5)
            ids = [r["record_id"] for r in bench.store.telemetry_rows(DEVICE)]
            assert ids == sorted(ids), "replay is oldest first"
            figure("replay (%s): unlock answered in %.2fs with %d of %d backlog records delivered"
                   % (runtime, latency, stored_then, BACKLOG))
            await ws.close()
    finally:
        await rig.stop_agent()
        await proxy.stop()


async def test_large_backlog_drains_within_the_heap_budget(runtime, rig, bench, figure):
    # A journal left full by a long outage (written here by the agent's own
    # Journal class). Reading it must not need big contiguous buffers: on a
    # fragmented heap a whole-segment read fails every time and the replay
    # stalls for good.
    from agent.journal import Journal
    n = 900  # within the board's 64 KB journal cap
    j = Journal(str(rig.journal / DEVICE), max_bytes=1 << 20, segment_bytes=4096)
    for _ in range(0, n, 50):
        j.append_many([("telemetry", None, {"temperature": 21.5, "humidity": 40}, None)] * 50)
    j.close()
    await rig.start_agent(rig.write_site(telemetry_interval_s=3600), runtime=runtime)
    start = time.monotonic()
    await eventually(lambda: len(bench.store.telemetry_rows(DEVICE)) >= n, timeout=60, every=0.2)
    secs = time.monotonic() - start
    assert "MemoryError" not in rig.output()
    ids = [r["record_id"] for r in bench.store.telemetry_rows(DEVICE)]
    assert ids == list(range(1, len(ids) + 1)) and len(ids) >= n  # + live samples after it
    figure("backlog (%s): %d records drained in %.1fs from agent start" % (runtime, n, secs))
