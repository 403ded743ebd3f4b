# Egress (issue 9, "Done means"): with the uplink blackholed and the
# journal full, the exit button still opens the door - per runtime, on the
# virtual board. The link goes through the fault proxy (host_tools/chaos),
# which swallows every byte; the journal is at its smallest cap (1 KB in
# 256-byte segments) and kept full by the door opening and closing (forced
# openings: three events each) until every new record evicts an old one.
# Then the button is pressed again and again: the relay energises and
# drops back every time, the agent never falls over, and once the link
# heals every record is at the bench or inside an eviction notice. How
# fast the relay follows the press is printed (`figure`), not asserted.
import asyncio
import json
import random
import re
import statistics
import time

import pytest

from agent.records import DOOR_EVENTS
from host_tools.chaos import FaultProxy
from host_tools.journal_tool import pending_ids, read_cursor
from host_tools.paths import BOARDS

from e2e_support import DEVICE, SITE, TOKEN, eventually

RELAY = 26
PRESSES = 10
PULSE_MS = 200
EVICTED = re.compile(r"full: evicted (\d+) unsent records \((\d+)\.\.(\d+)\)")   # agent/journal.py's line
# Quick to notice the link is dead and to come back once it heals.
LINK = {"heartbeat_s": 0.5, "connect_timeout_s": 2, "backoff_base_s": 0.1, "backoff_cap_s": 1.0,
        "backoff_reset_s": 2}


@pytest.fixture
def rig_options(tmp_path):
    spec = json.loads((BOARDS / "emulated.json").read_text())
    spec["journal"] = {"path": "journal", "max_kb": 1, "segment_bytes": 256}
    for p in spec["peripherals"]:
        if p["type"] == "door":
            p["unlock_ms"] = PULSE_MS
    path = tmp_path / "egress.json"
    path.write_text(json.dumps(spec))
    return {"device_id": DEVICE, "token": TOKEN, "site": dict(SITE, **LINK), "board": path}


async def _fill(rig, emu):
    """Door openings until the journal evicts, then as many again: from
    then on every record evicts an older one."""
    cycles = 0
    while "full: evicted" not in rig.output(None):
        assert cycles < 400, "the journal never filled:\n" + rig.output(40)
        await _open_and_close(emu)
        cycles += 1
    for _ in range(cycles):
        await _open_and_close(emu)


async def _open_and_close(emu):
    emu.set_door_open(True)
    await asyncio.sleep(0.08)      # past the sensor's debounce
    emu.set_door_open(False)
    await asyncio.sleep(0.08)


async def test_the_exit_button_opens_with_the_uplink_blackholed_and_the_journal_full(runtime, rig, bench, figure):
    proxy = await FaultProxy("127.0.0.1", bench.port).start()
    try:
        await rig.start_agent(rig.write_site("ws://127.0.0.1:%d/ws" % proxy.port), runtime=runtime)
        await rig.wait_registered(timeout=20)
        emu = rig.session.emulator
        await emu.wait_output(RELAY, 0)
        proxy.blackhole()
        await _fill(rig, emu)
        evicting = rig.output(None).count("full: evicted")

        took = []
        for _ in range(PRESSES):
            # Released for longer than the debounce; pressed at any moment
            # of the door's 50 ms poll, as a person does.
            await asyncio.sleep(0.1 + random.uniform(0, 0.05))
            pressed = time.perf_counter()
            emu.set_rex(True)
            await emu.wait_output(RELAY, 1, timeout=5)
            took.append((time.perf_counter() - pressed) * 1000)
            emu.set_rex(False)
            await emu.wait_output(RELAY, 0, timeout=5)   # the pulse ends by itself
        assert not rig.session.ended, rig.output(40)
        assert rig.output(None).count("full: evicted") > evicting, "the presses' records did not evict"
        took.sort()
        figure("egress (%s, uplink blackholed, journal full): exit button -> relay p50 %.1f ms, max %.1f ms "
               "over %d presses (emulator -> agent -> emulator over loopback; the door polls every 50 ms)"
               % (runtime, statistics.median(took), took[-1], PRESSES))

        # The link heals: every record made is at the bench, or was counted
        # evicted (journal_evicted, and its log line naming the ids).
        proxy.heal()
        folder = rig.journal / DEVICE
        await eventually(lambda: not pending_ids(folder), timeout=30, every=0.2)
        accounted = {r["record_id"] for r in bench.store.event_rows(DEVICE) + bench.store.telemetry_rows(DEVICE)}
        for count, first, last in EVICTED.findall(rig.output(None)):
            assert int(count) == int(last) - int(first) + 1
            accounted.update(range(int(first), int(last) + 1))
        missing = sorted(set(range(1, read_cursor(folder) + 1)) - accounted)
        assert not missing, "records neither delivered nor counted as evicted: %s" % missing[:20]
        names = [r["event_type"] for r in bench.store.event_rows(DEVICE) if r["event_type"] in DOOR_EVENTS]
        assert names[-3:] == ["rex", "unlocked", "locked"], names[-10:]   # the last press: newest, never evicted
        assert "Traceback" not in rig.output(None)
    finally:
        await proxy.stop()
