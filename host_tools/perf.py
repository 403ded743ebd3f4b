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
    p.add_argument("what", choices=("journal", "attendance"))
    p.add_argument("--records", type=int, default=500)
    p.add_argument("--punches", type=int, default=50)
    p.add_argument("--replay-records", type=int, default=1000)
    return p


def main(args):
    if args.records < 1 or args.replay_records < 50:
        print("error: --records must be >= 1 and --replay-records >= 50", file=sys.stderr)
        return 2
    if args.what == "attendance":
        if args.punches < 1:
            print("error: --punches must be >= 1", file=sys.stderr)
            return 2
        print(run_attendance(args.punches), flush=True)
        return 0
    print(run_journal(args.records, args.replay_records), flush=True)
    return 0


async def attendance_latency(runtime, uplink, punches, workdir):
    """Finger on the sensor -> row in the bench's SQLite, per punch; then a
    backlog of `punches` made offline drained on reconnect."""
    from agent.codecs import zfm
    from host_tools.bench import start_bench
    from host_tools.runner import start_board

    device = "perf-%s-%s" % (runtime, uplink)
    wd = workdir / device
    wd.mkdir()
    spec = json.loads((BOARDS / "emulated-attendance.json").read_text())
    for p in spec["peripherals"]:
        if p["type"] == "fingerprint":
            p["poll_ms"] = 20
    board = wd / "board.json"
    board.write_text(json.dumps(spec))
    db = str(wd / "bench.sqlite3")
    bench = await start_bench("127.0.0.1", 0, db)
    bench.store.add_device(device, "cloud")
    port = bench.port
    url = bench.http_url if uplink == "http" else bench.url
    site = wd / "site.json"
    site.write_text(json.dumps({"server": url, "device_id": device, "token": "cloud", "uplink": uplink,
                                "heartbeat_s": 5, "backoff_base_s": 0.2, "backoff_cap_s": 0.5}))
    lines = []
    session = await start_board(board, site, runtime=runtime, emulator_port=0, on_line=lines.append,
                                journal=wd / "journal")
    reader = session.reader
    reader.enroll(1)

    def stored():
        # Over JSON a punch is an event of type "punch"; XML and HTTP have punch rows.
        if uplink == "json_ws":
            return len(bench.store.event_rows(device, "punch"))
        return len(bench.store.punch_rows(device))

    async def until(pred, timeout=30):
        end = time.perf_counter() + timeout
        while not pred():
            if time.perf_counter() > end:
                raise RuntimeError("timed out; agent said:\n" + "\n".join(lines[-20:]))
            await asyncio.sleep(0.002)

    async def press(i):
        reader.place(1)
        await asyncio.to_thread(reader.wait_answered, zfm.SEARCH, i + 1, 10.0)
        read_at = time.perf_counter()
        reader.lift()
        nofinger = reader.answered(zfm.GEN_IMG, zfm.NO_FINGER)
        await asyncio.to_thread(reader.wait_answered, zfm.GEN_IMG, nofinger + 1, 10.0, zfm.NO_FINGER)
        return read_at

    try:
        await until(lambda: any("registered as" in x for x in lines))
        latencies = []
        for i in range(punches):
            read_at = await press(i)
            await until(lambda: stored() > i)
            latencies.append(time.perf_counter() - read_at)
        await bench.stop()
        for i in range(punches, 2 * punches):
            await press(i)
        bench = await start_bench("127.0.0.1", port, db)
        # Timed from the first backlog punch stored: the reconnect backoff
        # before it is not drain speed.
        await until(lambda: stored() > punches, timeout=60)
        t0, first = time.perf_counter(), stored()
        await until(lambda: stored() >= 2 * punches, timeout=120)
        drain = (2 * punches - first) / max(time.perf_counter() - t0, 1e-3)
    finally:
        await session.stop()
        await bench.stop()
    latencies.sort()
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]  # noqa: E731
    return {"p50_ms": pick(0.5) * 1000, "p99_ms": pick(0.99) * 1000, "drain_per_s": drain}


def run_attendance(punches=50):
    lines = ["doorlink perf attendance (%d live punches, then %d made offline)" % (punches, punches), "",
             "%-34s %10s %10s %18s" % ("uplink, runtime", "p50 ms", "p99 ms", "backlog punches/s")]
    with tempfile.TemporaryDirectory() as d:
        for uplink in ("xml_ws", "http", "json_ws"):
            for runtime in ("micropython", "cpython"):
                r = asyncio.run(attendance_latency(runtime, uplink, punches, Path(d)))
                lines.append("%-34s %10.1f %10.1f %18.0f" % ("%s, %s" % (uplink, runtime), r["p50_ms"],
                                                            r["p99_ms"], r["drain_per_s"]))
    lines += ["", "Latency: from the agent reading the finger (the module's Search answered) to the",
              "punch committed in the bench's SQLite, over loopback. Backlog: punches made while the",
              "bench was down, timed from the first one delivered after it came back."]
    return "\n".join(lines)
