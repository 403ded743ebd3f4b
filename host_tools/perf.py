# `doorlink perf journal`: what the journal costs and how fast a backlog
# drains. Figures, printed; no pass/fail.
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from host_tools import mpy
from host_tools.paths import BOARDS, ROOT

VALUE = {"user": 1234, "state": "in", "action": "FP"}


def _io_write_bytes():
    try:
        for line in Path("/proc/self/io").read_text().splitlines():
            if line.startswith("write_bytes:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def littlefs(records, batch):
    """Appends under MicroPython on LittleFS (RAM block device)."""
    res = subprocess.run([mpy.tool("micropython"), "-X", "heapsize=2m",
                          str(ROOT / "host_tools" / "mp" / "perf_journal.py"), str(records), str(batch)],
                         cwd=ROOT, env=mpy.micropython_env(ROOT), capture_output=True, text=True,
                         timeout=300)
    if res.returncode != 0:
        raise RuntimeError(res.stdout + res.stderr)
    return json.loads(res.stdout.strip().splitlines()[-1])


def host_fs(records, batch, folder):
    """Appends under CPython on this host's file system, fsync per batch."""
    from agent.journal import Journal
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


async def replay(runtime, records, workdir):
    """A prefilled journal drained to the bench over loopback."""
    from agent.journal import Journal
    from host_tools.bench import start_bench
    from host_tools.runner import start_board

    device = "perf-" + runtime
    jdir = workdir / ("journal-" + runtime)
    j = Journal(str(jdir / device), max_bytes=64 << 20, segment_bytes=4096)
    for _ in range(0, records, 50):
        j.append_many([("telemetry", None, {"temperature": 21.5, "humidity": 40}, None)] * 50)
    j.close()
    bench = await start_bench("127.0.0.1", 0, str(workdir / ("bench-%s.sqlite3" % runtime)))
    bench.store.add_device(device, "tok")
    site = workdir / ("site-%s.json" % runtime)
    site.write_text(json.dumps({"server": bench.url, "device_id": device, "token": "tok",
                                "telemetry_interval_s": 3600, "heartbeat_s": 30}))
    online = []
    t0 = time.perf_counter()
    session = await start_board(BOARDS / "emulated.json", site, runtime=runtime, emulator_port=0,
                                on_line=lambda line: online.append(time.perf_counter())
                                if "registered as" in line else None, journal=jdir)
    try:
        deadline = time.perf_counter() + 300
        while len(bench.store.telemetry_rows(device)) < records:
            if time.perf_counter() > deadline:
                raise RuntimeError("replay did not finish in 300 s")
            await asyncio.sleep(0.05)
        end = time.perf_counter()
    finally:
        await session.stop()
        await bench.stop()
    start = online[0] if online else t0
    return {"runtime": runtime, "records": records, "seconds": end - start,
            "records_per_s": records / (end - start)}


def run_journal(records=500, replay_records=1000):
    lines = ["doorlink perf journal (%d records of %d bytes payload)" % (records, len(json.dumps(VALUE))), ""]
    lines.append("%-44s %12s %22s" % ("append", "appends/s", "bytes written/record"))
    for batch in (1, 10):
        r = littlefs(records, batch)
        lines.append("%-44s %12.0f %22.0f" % ("MicroPython, LittleFS (RAM flash), %2d per sync" % batch,
                                            r["appends_per_s"], r["flash_bytes_per_record"]))
    with tempfile.TemporaryDirectory(dir=ROOT / "build" if (ROOT / "build").exists() else None) as d:
        for batch in (1, 10):
            r = host_fs(records, batch, Path(d) / ("b%d" % batch))
            disk = r["disk_bytes_per_record"]
            lines.append("%-44s %12.0f %22s" % ("CPython, host file system + fsync, %2d per sync" % batch,
                                                r["appends_per_s"],
                                                "%.0f" % disk if disk else "%.0f (logical)" % r["record_bytes"]))
        lines.append("")
        lines.append("%-44s %12s" % ("replay to the bench over loopback", "records/s"))
        for runtime in ("micropython", "cpython"):
            r = asyncio.run(replay(runtime, replay_records, Path(d)))
            lines.append("%-44s %12.0f" % ("%s agent, %d records" % (runtime, replay_records),
                                         r["records_per_s"]))
    lines.append("")
    lines.append("LittleFS figures count bytes reaching the block device; they are wear, not speed: "
                 "the RAM flash is far faster than a real chip.")
    return "\n".join(lines)


def add_parser(sub):
    p = sub.add_parser("perf", help="benchmarks that print figures")
    p.add_argument("what", choices=("journal",))
    p.add_argument("--records", type=int, default=500)
    p.add_argument("--replay-records", type=int, default=1000)
    return p


def main(args):
    if args.records < 1 or args.replay_records < 50:
        print("error: --records must be >= 1 and --replay-records >= 50", file=sys.stderr)
        return 2
    print(run_journal(args.records, args.replay_records), flush=True)
    return 0
