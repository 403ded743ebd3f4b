# Backlog replay after an outage: oldest first, and a live command is not
# stuck behind it.
import time

import aiohttp
from e2e_support import DEVICE, TOKEN, Admin, eventually, write_site

from host_tools.bench import start_bench
from host_tools.chaos import FaultProxy

BACKLOG = 300


def _rows(store):
    return store.telemetry_rows(DEVICE) + store.event_rows(DEVICE)


async def test_unlock_lands_promptly_during_replay(runtime, agent, tmp_path, figure):
    db = str(tmp_path / "bench.sqlite3")
    bench = await start_bench("127.0.0.1", 0, db)
    bench.store.add_device(DEVICE, TOKEN)
    port = bench.port
    await bench.stop()  # the cloud is down from the start: everything backs up
    proxy = await FaultProxy("127.0.0.1", port).start()
    proxy.throttle(30_000)  # a slow uplink, so the replay takes a while
    site = write_site(tmp_path, "ws://127.0.0.1:%d/ws" % proxy.port, telemetry_interval_s=0.02,
                      heartbeat_s=2, backoff_base_s=0.2, backoff_cap_s=0.5)
    await agent.start(runtime, site)
    journal = tmp_path / "journal" / DEVICE
    from host_tools.journal_tool import pending_ids
    await eventually(lambda: len(pending_ids(journal)) >= BACKLOG, timeout=60, every=0.5)

    bench = await start_bench("127.0.0.1", port, db)
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
        await agent.session.stop()
        await proxy.stop()
        await bench.stop()


async def test_large_backlog_drains_within_the_heap_budget(runtime, bench, agent, tmp_path, figure):
    # A journal left full by a long outage (written here by the agent's own
    # Journal class). Reading it must not need big contiguous buffers: on a
    # fragmented heap a whole-segment read fails every time and the replay
    # stalls for good.
    from agent.journal import Journal
    n = 900  # within the board's 64 KB journal cap
    j = Journal(str(tmp_path / "journal" / DEVICE), max_bytes=1 << 20, segment_bytes=4096)
    for _ in range(0, n, 50):
        j.append_many([("telemetry", None, {"temperature": 21.5, "humidity": 40}, None)] * 50)
    j.close()
    await agent.start(runtime, write_site(tmp_path, bench.url, telemetry_interval_s=3600))
    start = time.monotonic()
    await eventually(lambda: len(bench.store.telemetry_rows(DEVICE)) >= n, timeout=60, every=0.2)
    secs = time.monotonic() - start
    assert "MemoryError" not in agent.output()
    ids = [r["record_id"] for r in bench.store.telemetry_rows(DEVICE)]
    assert ids == list(range(1, len(ids) + 1)) and len(ids) >= n  # + live samples after it
    figure("backlog (%s): %d records drained in %.1fs from agent start" % (runtime, n, secs))
