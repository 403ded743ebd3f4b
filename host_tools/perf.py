"""`doorlink perf journal|attendance|door`: what the journal costs, how fast a
backlog drains, how long a punch takes to reach the cloud, how fast a door
controller decides. Figures,
printed; no pass/fail (a timed assertion in a test would be a flaky test,
not a measurement).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from agent.codecs import zfm
from agent.journal import Journal
from host_tools import mpy
from host_tools.cli_common import CliError, Parents
from host_tools.paths import BUILD, ROOT
from host_tools.rig import REGISTERED, Rig

VALUE = {"user": 1234, "state": "in", "action": "FP"}
UPLINKS = ("xml_ws", "http", "json_ws")
RUNTIMES = ("micropython", "cpython")


def _io_write_bytes() -> int | None:
    try:
        for line in Path("/proc/self/io").read_text().splitlines():
            if line.startswith("write_bytes:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def littlefs(records: int, batch: int) -> dict:
    """Appends under MicroPython on LittleFS (RAM block device)."""
    res = subprocess.run([mpy.tool("micropython"), "-X", "heapsize=2m",
                          str(ROOT / "host_tools" / "mp" / "perf_journal.py"), str(records), str(batch)],
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


async def replay(runtime: str, records: int, workdir: Path) -> dict:
    """A prefilled journal drained to the bench over loopback, timed from
    the agent's registration to the last row committed."""
    rig = Rig(workdir / f"replay-{runtime}", runtime=runtime, device_id=f"perf-{runtime}",
              site={"telemetry_interval_s": 3600, "heartbeat_s": 30})
    j = Journal(str(rig.journal / rig.device_id), max_bytes=64 << 20, segment_bytes=4096)
    for _ in range(0, records, 50):
        j.append_many([("telemetry", None, {"temperature": 21.5, "humidity": 40}, None)] * 50)
    j.close()
    async with rig:
        bench = await rig.start_bench()
        await rig.start_agent()
        online = rig.stamps[await rig.wait_for(REGISTERED, timeout=60)]
        deadline = time.perf_counter() + 300
        while len(bench.store.telemetry_rows(rig.device_id)) < records:
            if time.perf_counter() > deadline:
                raise RuntimeError("replay did not finish in 300 s:\n" + rig.output())
            await asyncio.sleep(0.05)
        end = time.perf_counter()
    return {"runtime": runtime, "records": records, "seconds": end - online,
            "records_per_s": records / (end - online)}


def run_journal(records: int = 500, replay_records: int = 1000) -> str:
    lines = [f"doorlink perf journal ({records} records of {len(json.dumps(VALUE))} bytes payload)", "",
             f"{'append':<44} {'appends/s':>12} {'bytes written/record':>22}"]
    for batch in (1, 10):
        r = littlefs(records, batch)
        label = f"MicroPython, LittleFS (RAM flash), {batch:2d} per sync"
        lines.append(f"{label:<44} {r['appends_per_s']:>12.0f} {r['flash_bytes_per_record']:>22.0f}")
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
    backlog of `punches` made offline drained on reconnect."""
    device = f"perf-{runtime}-{uplink}"
    rig = Rig(workdir / device, board="emulated-attendance", runtime=runtime, device_id=device, uplink=uplink,
              peripherals={"fingerprint": {"poll_ms": 20}},
              site={"heartbeat_s": 5, "backoff_base_s": 0.2, "backoff_cap_s": 0.5})

    def stored() -> int:
        # Over JSON a punch is an event of type "punch"; XML and HTTP have punch rows.
        if uplink == "json_ws":
            return len(rig.bench.store.event_rows(device, "punch"))
        return len(rig.bench.store.punch_rows(device))

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

        async def press(i: int) -> float:
            reader.place(1)
            await asyncio.to_thread(reader.wait_answered, zfm.SEARCH, i + 1, 10.0)
            read_at = time.perf_counter()
            reader.lift()
            nofinger = reader.answered(zfm.GEN_IMG, zfm.NO_FINGER)
            await asyncio.to_thread(reader.wait_answered, zfm.GEN_IMG, nofinger + 1, 10.0, zfm.NO_FINGER)
            return read_at

        await rig.wait_registered()
        latencies = []
        for i in range(punches):
            read_at = await press(i)
            await until(lambda i=i: stored() > i)
            latencies.append(time.perf_counter() - read_at)
        await rig.stop_bench()
        for i in range(punches, 2 * punches):
            await press(i)
        await rig.restart_bench()
        # Timed from the first backlog punch stored: the reconnect backoff
        # before it is not drain speed.
        await until(lambda: stored() > punches, timeout=60)
        t0, first = time.perf_counter(), stored()
        await until(lambda: stored() >= 2 * punches, timeout=120)
        drain = (2 * punches - first) / max(time.perf_counter() - t0, 1e-3)
    latencies.sort()

    def pick(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))]
    return {"p50_ms": pick(0.5) * 1000, "p99_ms": pick(0.99) * 1000, "drain_per_s": drain}


def run_attendance(punches: int = 50) -> str:
    lines = [f"doorlink perf attendance ({punches} live punches, then {punches} made offline)", "",
             f"{'uplink, runtime':<34} {'p50 ms':>10} {'p99 ms':>10} {'backlog punches/s':>18}"]
    with tempfile.TemporaryDirectory() as d:
        for uplink in UPLINKS:
            for runtime in RUNTIMES:
                r = asyncio.run(attendance_latency(runtime, uplink, punches, Path(d)))
                label = f"{uplink}, {runtime}"
                lines.append(f"{label:<34} {r['p50_ms']:>10.1f} {r['p99_ms']:>10.1f} {r['drain_per_s']:>18.0f}")
    lines += ["", "Latency: from the agent reading the finger (the module's Search answered) to the",
              "punch committed in the bench's SQLite, over loopback. Backlog: punches made while the",
              "bench was down, timed from the first one delivered after it came back."]
    return "\n".join(lines)


def add_parser(sub: argparse._SubParsersAction, parents: Parents) -> argparse.ArgumentParser:
    p = sub.add_parser("perf", help="benchmarks that print figures (no pass/fail)")
    p.add_argument("what", choices=("journal", "attendance", "door"),
                   help="journal: appends and replay; attendance: punch-to-cloud latency and backlog drain; "
                        "door: cloud command, exit button and card to relay on the virtual board, "
                        "decisions among 10,000 users, full-sync time")
    p.add_argument("--users", type=int, default=10000, help="door: users synced to the store (>= 100)")
    p.add_argument("--records", type=int, default=500, help="journal appends per run (>= 1)")
    p.add_argument("--punches", type=int, default=50, help="attendance punches per run (>= 1)")
    p.add_argument("--replay-records", type=int, default=1000, help="journal records replayed (>= 50)")
    p.set_defaults(handler=run)
    return p


def run(args: argparse.Namespace) -> int:
    if args.records < 1 or args.replay_records < 50 or args.punches < 1:
        raise CliError("--records and --punches must be >= 1, --replay-records >= 50",
                       "the figures mean little below that")
    if args.what == "door":
        if not 100 <= args.users <= 20000:
            raise CliError("--users must be from 100 to 20000", "a board's store holds at most 20,000")
        from host_tools.perf_door import run_door
        print(run_door(args.users), flush=True)
    elif args.what == "attendance":
        print(run_attendance(args.punches), flush=True)
    else:
        print(run_journal(args.records, args.replay_records), flush=True)
    return 0
