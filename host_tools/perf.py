"""The journal and attendance benchmarks of `doorlink perf`
(host_tools/perf_cli.py): what the journal costs, how fast a backlog
drains, how long a punch takes to reach the cloud; `all`
(host_tools/perf_all.py) runs these and the others at a small scale into
one table. Figures, printed; no
pass/fail (a timed assertion in a test would be a flaky test, not a
measurement).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from agent import records
from agent.codecs import zfm
from agent.journal import Journal
from agent.records import TELEMETRY
from host_tools import mpy
from host_tools.paths import BUILD, ROOT, board_path
from host_tools.rig import REGISTERED, Rig

VALUE = {"user": 1234, "state": "in", "action": "FP"}
UPLINKS = ("xml_ws", "http", "json_ws")
RUNTIMES = ("micropython", "cpython")
FRAME_HEADER = 7       # a journal frame's magic, length and CRC (agent/journal.py HEADER): not a byte kept
RECORD_ROOM = 160      # journal bytes per record that a benchmark's backlog is given (a punch takes ~130)


def _io_write_bytes() -> int | None:
    try:
        for line in Path("/proc/self/io").read_text().splitlines():
            if line.startswith("write_bytes:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def littlefs(records: int, batch: int, backend: str = "lfs") -> dict:
    """Appends under MicroPython on LittleFS (RAM block device), or with
    backend "raw" on the raw-flash journal (a NOR flash partition)."""
    res = subprocess.run([mpy.tool("micropython"), "-X", "heapsize=2m",
                          str(ROOT / "host_tools" / "mp" / "perf_journal.py"), str(records), str(batch), backend],
                         cwd=ROOT, env=mpy.micropython_env(ROOT), capture_output=True, text=True,
                         timeout=300, check=False)
    if res.returncode != 0:
        raise RuntimeError(res.stdout + res.stderr)
    return json.loads(res.stdout.strip().splitlines()[-1])


def host_fs(records: int, batch: int, folder: Path) -> dict:
    """Appends under CPython on this host's file system, fsync per batch."""
    j = Journal(str(folder), max_bytes=64 << 20, segment_bytes=4096)
    io0 = _io_write_bytes()
    t0 = time.perf_counter()
    done = 0
    while done < records:
        n = min(batch, records - done)
        j.append_many([("event", "punch", VALUE, None)] * n)
        done += n
    secs = time.perf_counter() - t0
    io1 = _io_write_bytes()
    j.close()
    disk = (io1 - io0) / records if io0 is not None and io1 is not None else None
    return {"records": records, "batch": batch, "seconds": secs, "appends_per_s": records / secs,
            "record_bytes": j.stats["bytes_written"] / records, "disk_bytes_per_record": disk}


def board_with_journal(workdir: Path, board: str, records: int) -> Path:
    """The board file with a journal that holds `records` records without
    evicting (a board's own 64 KB would evict most of 10,000)."""
    spec = json.loads(board_path(board).read_text())
    spec["journal"]["max_kb"] = max(spec["journal"]["max_kb"], records * RECORD_ROOM // 1024 + 64)
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / f"{board}-journal.json"
    path.write_text(json.dumps(spec, indent=1))
    return path


async def replay(runtime: str, records: int, workdir: Path) -> dict:
    """A prefilled journal drained to the bench over loopback, timed from
    the agent's registration to the last row committed (stamped by the
    bench's observer as each row is committed: polling the table would
    take the bench's CPU, in this process, from the drain it measures)."""
    folder = workdir / f"replay-{runtime}"
    device = f"perf-{runtime}"
    board = board_with_journal(folder, "emulated", records)
    committed: list[float] = []

    def observe(kind: str, data: dict) -> None:
        if kind == TELEMETRY and data.get("device_id") == device:
            committed.append(time.perf_counter())

    rig = Rig(folder, board=board, runtime=runtime, device_id=device, observer=observe,
              site={"telemetry_interval_s": 3600, "heartbeat_s": 30})
    j = Journal(str(rig.journal / rig.device_id), max_bytes=64 << 20, segment_bytes=4096)
    for _ in range(0, records, 50):
        j.append_many([("telemetry", None, {"temperature": 21.5, "humidity": 40}, None)] * 50)
    j.close()
    async with rig:
        await rig.start_bench()
        await rig.start_agent()
        online = rig.stamps[await rig.wait_for(REGISTERED, timeout=60)]
        deadline = time.perf_counter() + 300
        while len(committed) < records:
            if time.perf_counter() > deadline:
                raise RuntimeError("replay did not finish in 300 s:\n" + rig.output())
            await asyncio.sleep(0.05)
        end = committed[records - 1]
    return {"runtime": runtime, "records": records, "seconds": end - online,
            "records_per_s": records / (end - online)}


def run_journal(records: int = 500, replay_records: int = 1000) -> str:
    lines = [f"doorlink perf journal ({records} records of {len(json.dumps(VALUE))} bytes payload)", "",
             f"{'append':<44} {'appends/s':>12} {'bytes written/record':>22}"]
    for batch in (1, 10):
        r = littlefs(records, batch)
        label = f"MicroPython, LittleFS (RAM flash), {batch:2d} per sync"
        lines.append(f"{label:<44} {r['appends_per_s']:>12.0f} {r['flash_bytes_per_record']:>22.0f}")
    if (ROOT / "agent" / "journal_raw.py").exists():
        r = littlefs(records, 1, backend="raw")
        label = "MicroPython, raw NOR flash (RAM),  1 per sync"
        lines.append(f"{label:<44} {r['appends_per_s']:>12.0f} {r['flash_bytes_per_record']:>22.0f}")
    else:
        lines.append("MicroPython, raw NOR flash: not built (no agent/journal_raw.py)")
    BUILD.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=BUILD) as d:
        for batch in (1, 10):
            r = host_fs(records, batch, Path(d) / f"b{batch}")
            disk = r["disk_bytes_per_record"]
            shown = f"{disk:.0f}" if disk else f"{r['record_bytes']:.0f} (logical)"
            label = f"CPython, host file system + fsync, {batch:2d} per sync"
            lines.append(f"{label:<44} {r['appends_per_s']:>12.0f} {shown:>22}")
        lines += ["", f"{'replay to the bench over loopback':<44} {'records/s':>12}"]
        for runtime in RUNTIMES:
            r = asyncio.run(replay(runtime, replay_records, Path(d)))
            label = f"{runtime} agent, {replay_records} records"
            lines.append(f"{label:<44} {r['records_per_s']:>12.0f}")
    lines += ["", "LittleFS figures count bytes reaching the block device; they are wear, not speed: "
                  "the RAM flash is far faster than a real chip."]
    return "\n".join(lines)


async def attendance_latency(runtime: str, uplink: str, punches: int, workdir: Path) -> dict:
    """Finger on the sensor -> row in the bench's SQLite, per punch; then a
    backlog of `punches` made offline drained on reconnect.

    Both ends are stamped where they happen, not where a loop notices them:
    the start in the emulator's thread as the module's Search answer is
    noted (an event-loop hop later would shorten every figure), the end in
    the bench's observer, which hears of a punch only after its row is
    committed (a poll of the table would add its interval)."""
    device = f"perf-{runtime}-{uplink}"
    committed: list[float] = []   # perf_counter() as each punch's row was committed

    def observe(kind: str, data: dict) -> None:
        if kind == records.PUNCH and data.get("device_id") == device:
            committed.append(time.perf_counter())

    rig = Rig(workdir / device, board="emulated-attendance", runtime=runtime, device_id=device, uplink=uplink,
              peripherals={"fingerprint": {"poll_ms": 20}}, observer=observe,
              site={"heartbeat_s": 5, "backoff_base_s": 0.2, "backoff_cap_s": 0.5})

    async def until(pred: Callable[[], bool], timeout: float = 30) -> None:
        end = time.perf_counter() + timeout
        while not pred():
            if time.perf_counter() > end:
                raise RuntimeError("timed out; agent said:\n" + rig.output(20))
            await asyncio.sleep(0.002)

    async with rig:
        await rig.start_bench()
        reader = (await rig.start_agent()).reader
        reader.enroll(1)

        def answered(i: int) -> float:
            reader.wait_answered(zfm.SEARCH, i + 1, 10.0)
            return time.perf_counter()

        async def press(i: int) -> float:
            reader.place(1)
            read_at = await asyncio.to_thread(answered, i)
            reader.lift()
            nofinger = reader.answered(zfm.GEN_IMG, zfm.NO_FINGER)
            await asyncio.to_thread(reader.wait_answered, zfm.GEN_IMG, nofinger + 1, 10.0, zfm.NO_FINGER)
            return read_at

        await rig.wait_registered()
        latencies = []
        for i in range(punches):
            read_at = await press(i)
            await until(lambda i=i: len(committed) > i)
            latencies.append(committed[i] - read_at)
        await rig.stop_bench()
        for i in range(punches, 2 * punches):
            await press(i)
        await rig.restart_bench()
        # Timed from the first backlog punch stored: the reconnect backoff
        # before it is not drain speed.
        await until(lambda: len(committed) >= 2 * punches, timeout=120)
        first = committed[punches]
        drain = (punches - 1) / max(committed[-1] - first, 1e-6) if punches > 1 else float("nan")
    latencies.sort()

    def pick(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))]
    return {"p50_ms": pick(0.5) * 1000, "p99_ms": pick(0.99) * 1000, "drain_per_s": drain}


async def backlog_drain(runtime: str, uplink: str, count: int, workdir: Path, timeout: float = 120) -> dict:
    """`count` punches journaled while offline, drained to the bench over
    `uplink`: timed from the agent's registration line to the last row
    committed (the bench's observer hears of a punch only once it is)."""
    device = f"drain-{runtime}-{uplink}"
    folder = workdir / device
    folder.mkdir(parents=True, exist_ok=True)
    committed: list[float] = []

    def observe(kind: str, data: dict) -> None:
        if kind == records.PUNCH and data.get("device_id") == device:
            committed.append(time.perf_counter())

    rig = Rig(folder, board=board_with_journal(folder, "emulated-attendance", count), runtime=runtime,
              device_id=device, uplink=uplink, observer=observe, site={"heartbeat_s": 30})
    j = Journal(str(rig.journal / device), max_bytes=64 << 20, segment_bytes=4096)
    for start in range(0, count, 100):
        j.append_many([("punch", None, {records.USER: str(1 + i % 50), records.WHEN: "2026-12-07T08:00:00",
                                        records.GMT: 0, records.ATTEND: records.IN, records.AP: 1,
                                        records.ACTION: "FP", records.JOB: 0}, None)
                       for i in range(start, min(count, start + 100))])
    j.close()
    async with rig:
        await rig.start_bench()
        await rig.start_agent()
        online = rig.stamps[await rig.wait_for(REGISTERED, timeout=120)]
        deadline = time.perf_counter() + timeout
        while len(committed) < count:
            if time.perf_counter() > deadline:
                # The line that says why (a link failure), else the last.
                why = next((line for line in reversed(rig.lines) if "failed" in line), rig.output(1))
                raise RuntimeError(f"{len(committed):,} of {count:,} punches drained in {timeout:.0f} s: "
                                   + why.split(": ", 1)[-1])
            await asyncio.sleep(0.01)
    secs = committed[count - 1] - online
    return {"runtime": runtime, "uplink": uplink, "records": count, "seconds": secs, "records_per_s": count / secs}


BACKLOG = 10000   # punches in the backlog benchmark (the goal: drained in <= 2 s on MicroPython)


def run_attendance(punches: int = 50, backlog: int = BACKLOG) -> str:
    lines = [f"doorlink perf attendance ({punches} live punches, then {punches} made offline)", "",
             f"{'uplink, runtime':<34} {'p50 ms':>10} {'p99 ms':>10} {'backlog punches/s':>18}"]
    with tempfile.TemporaryDirectory() as d:
        for uplink in UPLINKS:
            for runtime in RUNTIMES:
                r = asyncio.run(attendance_latency(runtime, uplink, punches, Path(d)))
                label = f"{uplink}, {runtime}"
                lines.append(f"{label:<34} {r['p50_ms']:>10.1f} {r['p99_ms']:>10.1f} {r['drain_per_s']:>18.0f}")
        lines += ["", f"{'backlog of ' + format(backlog, ',') + ' punches':<34} {'seconds':>10} {'punches/s':>10}"]
        for uplink in UPLINKS:
            for runtime in RUNTIMES:
                label = f"{uplink}, {runtime}"
                try:
                    r = asyncio.run(backlog_drain(runtime, uplink, backlog, Path(d), timeout=60))
                except RuntimeError as e:
                    lines.append(f"{label:<34} did not finish: {str(e)[:90]}")
                    continue
                lines.append(f"{label:<34} {r['seconds']:>10.2f} {r['records_per_s']:>10.0f}")
    lines += ["", "Latency: from the agent reading the finger (the module's Search answered, stamped in",
              "the emulator's thread) to the punch committed in the bench's SQLite (stamped by the",
              "bench's observer), over loopback. Backlog punches/s: punches made while the bench was",
              "down, from the first one delivered after it came back to the last. Backlog of N: a",
              "journal prefilled with N punches, from the agent's registration to the last committed."]
    return "\n".join(lines)
