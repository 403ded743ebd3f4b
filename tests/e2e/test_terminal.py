# The attendance terminal end to end, per uplink and per runtime: a finger
# pressed on the emulated ZFM module (a pty, real packet protocol) becomes a
# punch row in the bench's SQLite with the right user and time; with the
# bench down, punches wait in the journal and all arrive exactly once.
import asyncio
import json
import time

import pytest
from e2e_support import eventually

from agent import clock
from agent.codecs import zfm
from host_tools.bench import start_bench
from host_tools.paths import BOARDS
from host_tools.runner import start_board

DEVICE = "ZX12345678"
CLOUD_ID = "cloud_001"
OFFLINE_PUNCHES = 200


@pytest.fixture(params=["xml_ws", "http"])
def uplink(request):
    return request.param


def _board(tmp_path, poll_ms):
    spec = json.loads((BOARDS / "emulated-attendance.json").read_text())
    for p in spec["peripherals"]:
        if p["type"] == "fingerprint":
            p["poll_ms"] = poll_ms
    path = tmp_path / "board.json"
    path.write_text(json.dumps(spec))
    return path


def _site(tmp_path, bench, uplink, port=None):
    url = bench.http_url if uplink == "http" else bench.url
    if port is not None:
        url = url.replace(":%d" % bench.port, ":%d" % port)
    path = tmp_path / "site.json"
    path.write_text(json.dumps({"server": url, "device_id": DEVICE, "token": CLOUD_ID, "uplink": uplink,
                                "gmt": 8, "heartbeat_s": 2, "backoff_base_s": 0.2, "backoff_cap_s": 1}))
    return path


async def _press(reader, finger, searches_before):
    """One finger press: on the sensor until the agent searched it, then off."""
    reader.place(finger)
    await asyncio.to_thread(reader.wait_answered, zfm.SEARCH, searches_before + 1, 10.0)
    reader.lift()
    # The reader re-arms when it sees the sensor empty again.
    nofinger = reader.answered(zfm.GEN_IMG, zfm.NO_FINGER)
    await asyncio.to_thread(reader.wait_answered, zfm.GEN_IMG, nofinger + 1, 10.0, zfm.NO_FINGER)


async def test_finger_press_becomes_a_punch_row(runtime, uplink, tmp_path):
    bench = await start_bench("127.0.0.1", 0, str(tmp_path / "bench.sqlite3"))
    bench.store.add_device(DEVICE, CLOUD_ID)
    lines = []
    session = await start_board(_board(tmp_path, 100), _site(tmp_path, bench, uplink), runtime=runtime,
                                emulator_port=0, on_line=lines.append, journal=tmp_path / "journal")
    try:
        await eventually(lambda: "registered as" in "\n".join(lines), timeout=20)
        session.reader.enroll(7)
        before = time.time()
        await _press(session.reader, 7, 0)
        rows = await eventually(lambda: bench.store.punch_rows(DEVICE), timeout=20)
        assert rows[0]["user_id"] == "7"
        punched = clock.parse_iso(rows[0]["punch_time"], 8)  # local time at GMT+8
        assert before - 2 <= punched <= time.time() + 2
        assert rows[0]["protocol"] == ("xml" if uplink == "xml_ws" else "http")
    finally:
        await session.stop()
        await bench.stop()
        print("\n".join(lines[-30:]))


async def test_punches_made_offline_arrive_exactly_once(runtime, uplink, tmp_path, figure):
    db = str(tmp_path / "bench.sqlite3")
    bench = await start_bench("127.0.0.1", 0, db)
    bench.store.add_device(DEVICE, CLOUD_ID)
    port = bench.port
    await bench.stop()  # the cloud is down while people clock in
    lines = []
    session = await start_board(_board(tmp_path, 20), _site(tmp_path, bench, uplink), runtime=runtime,
                                emulator_port=0, on_line=lines.append, journal=tmp_path / "journal")
    try:
        reader = session.reader
        for finger in (1, 2, 3, 4):
            reader.enroll(finger)
        await eventually(lambda: "module ready" in "\n".join(lines), timeout=20)
        start = time.monotonic()
        for i in range(OFFLINE_PUNCHES):
            await _press(reader, 1 + i % 4, i)
        pressed = time.monotonic() - start
        bench = await start_bench("127.0.0.1", port, db)
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
        await session.stop()
        await bench.stop()
        if not lines or "Traceback" in "\n".join(lines):
            print("\n".join(lines[-40:]))
