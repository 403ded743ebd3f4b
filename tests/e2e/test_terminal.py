# The attendance terminal end to end, per uplink and per runtime: a finger
# pressed on the emulated ZFM module (a pty, real packet protocol) becomes a
# punch row in the bench's SQLite with the right user and time; with the
# bench down, punches wait in the journal and all arrive exactly once.
import asyncio
import time

import pytest

from agent.codecs import zfm
from agent.codecs.values import wall_epoch
from host_tools.rig import Rig

from e2e_support import eventually

DEVICE = "ZX12345678"
CLOUD_ID = "cloud_001"
OFFLINE_PUNCHES = 200


@pytest.fixture(params=["xml_ws", "http"])
def uplink(request):
    return request.param


def _terminal(runtime, tmp_path, uplink, poll_ms):
    return Rig(tmp_path, board="emulated-attendance", runtime=runtime, device_id=DEVICE, token=CLOUD_ID,
               uplink=uplink, peripherals={"fingerprint": {"poll_ms": poll_ms}},
               site={"gmt": 8, "heartbeat_s": 2, "backoff_base_s": 0.2, "backoff_cap_s": 1})


async def _press(reader, finger, searches_before):
    """One finger press: on the sensor until the agent searched it, then off."""
    reader.place(finger)
    await asyncio.to_thread(reader.wait_answered, zfm.SEARCH, searches_before + 1, 10.0)
    reader.lift()
    # The reader re-arms when it sees the sensor empty again.
    nofinger = reader.answered(zfm.GEN_IMG, zfm.NO_FINGER)
    await asyncio.to_thread(reader.wait_answered, zfm.GEN_IMG, nofinger + 1, 10.0, zfm.NO_FINGER)


async def test_finger_press_becomes_a_punch_row(runtime, uplink, tmp_path):
    rig = _terminal(runtime, tmp_path, uplink, 100)
    try:
        bench = await rig.start_bench()
        session = await rig.start_agent()
        await rig.wait_registered()
        session.reader.enroll(7)
        before = time.time()
        await _press(session.reader, 7, 0)
        rows = await eventually(lambda: bench.store.punch_rows(DEVICE), timeout=20)
        assert rows[0]["user_id"] == "7"
        punched = wall_epoch(rows[0]["punch_time"], 8)  # local time at GMT+8
        assert before - 2 <= punched <= time.time() + 2
        assert rows[0]["protocol"] == ("xml" if uplink == "xml_ws" else "http")
    finally:
        await rig.stop()
        print(rig.output(30))


async def test_punches_made_offline_arrive_exactly_once(runtime, uplink, tmp_path, figure):
    rig = _terminal(runtime, tmp_path, uplink, 20)
    try:
        await rig.start_bench()
        await rig.stop_bench()  # the cloud is down while people clock in
        reader = (await rig.start_agent()).reader
        for finger in (1, 2, 3, 4):
            reader.enroll(finger)
        await rig.wait_for("module ready")
        start = time.monotonic()
        for i in range(OFFLINE_PUNCHES):
            await _press(reader, 1 + i % 4, i)
        pressed = time.monotonic() - start
        bench = await rig.restart_bench()
        start = time.monotonic()
        rows = await eventually(lambda: len(bench.store.punch_rows(DEVICE)) >= OFFLINE_PUNCHES and
                                bench.store.punch_rows(DEVICE), timeout=90, every=0.5)
        drained = time.monotonic() - start
        await asyncio.sleep(1)  # anything sent twice would show up now
        rows = bench.store.punch_rows(DEVICE)
        assert len(rows) == OFFLINE_PUNCHES
        assert sorted(int(r["log_id"]) for r in rows) == list(range(1, OFFLINE_PUNCHES + 1))
        assert [r["user_id"] for r in rows[:4]] == ["1", "2", "3", "4"]
        figure("attendance (%s, %s): %d punches journaled offline in %.1fs, delivered in %.1fs, each once"
               % (runtime, uplink, OFFLINE_PUNCHES, pressed, drained))
    finally:
        await rig.stop()
        if not rig.lines or "Traceback" in rig.output():
            print(rig.output(40))
