"""The local bench of `doorlink fleet`: a `doorlink bench` SUBPROCESS on
127.0.0.1 with a database of its own, so that what it costs (CPU, RSS)
is read from /proc/PID and is the bench's alone, and so that it can be
killed and restarted on the same port and file (a crash, mid-run).

Also: provisioning the fleet's devices into that database before the
bench starts, and reading back which records it stored (by device and
journal id) once the run is over.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import re
import sqlite3
import sys
import time
from pathlib import Path

from host_tools.bench.store import BenchStore
from host_tools.paths import ROOT

START_S = 30.0      # from spawning the bench to its "listening" line
STOP_S = 10.0
SAMPLE_S = 0.5      # /proc sampling period
LISTENING = re.compile(r"bench listening on ws://127\.0\.0\.1:(\d+)/ws")
TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

# Every record the bench stores, as (device id, journal id): JSON events
# and telemetry carry the journal id as record_id; XML and CloudSolution
# punches and admin logs as their log id (the journal id, as text).
STORED_IDS = """
SELECT device_id, record_id FROM events WHERE record_id IS NOT NULL
UNION ALL SELECT device_id, record_id FROM telemetry WHERE record_id IS NOT NULL
UNION ALL SELECT device_id, CAST(log_id AS INTEGER) FROM punches
UNION ALL SELECT device_id, CAST(log_id AS INTEGER) FROM admin_logs
"""


def provision(db: Path, devices: list[tuple[str, str]]) -> None:
    """Add every (id, token) to the bench database. Each token is stored
    as a scrypt hash (~35 ms of a core): hashed on every core at once
    (hashlib releases the GIL), then written by the store's own code."""
    store = BenchStore(db)
    try:
        with concurrent.futures.ThreadPoolExecutor(os.cpu_count() or 1) as pool:
            list(pool.map(lambda d: store.add_device(*d), devices))
    finally:
        store.close()


def stored_ids(db: Path) -> dict[str, set[int]]:
    """device id -> the journal ids the bench stored from it."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        out: dict[str, set[int]] = {}
        for device_id, rid in con.execute(STORED_IDS):
            out.setdefault(device_id, set()).add(rid)
        return out
    finally:
        con.close()


def _avg(xs: list[float]) -> float | None:
    return round(sum(xs) / len(xs), 1) if xs else None


class Usage:
    """CPU% (of one core) and RSS of the bench process over the run, each
    sample with its time (time.perf_counter())."""

    def __init__(self) -> None:
        self.cpu: list[tuple[float, float]] = []
        self.rss_mb: list[float] = []

    def summary(self, load: tuple[float, float] | None = None) -> dict:
        """Peaks and averages over the run; `load` (start, end): the CPU
        average within it too (the connect storm's token checks aside)."""
        cpu = [c for _, c in self.cpu]
        out = {"cpu_pct_peak": round(max(cpu), 1) if cpu else None, "cpu_pct_avg": _avg(cpu),
               "rss_mb_peak": round(max(self.rss_mb), 1) if self.rss_mb else None, "rss_mb_avg": _avg(self.rss_mb)}
        if load is not None:
            out["cpu_pct_avg_load"] = _avg([c for t, c in self.cpu if load[0] <= t <= load[1]])
        return out


def cpu_seconds(pid: int | str = "self") -> float | None:
    """User + system CPU seconds of a process (/proc/PID/stat), None once gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_mb(pid: int | str = "self") -> float | None:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE / (1 << 20)
    except OSError:
        return None


class LocalBench:
    def __init__(self, work: Path) -> None:
        self.db = work / "bench.sqlite3"
        self.log_path = work / "bench.log"
        self.port = 0
        self.proc: asyncio.subprocess.Process | None = None
        self.usage = Usage()
        self.starts = 0
        self._log = None
        self._sampler: asyncio.Task | None = None
        self._drain: asyncio.Task | None = None

    def url(self, uplink: str) -> str:
        return f"http://127.0.0.1:{self.port}" if uplink == "http" else f"ws://127.0.0.1:{self.port}/ws"

    async def start(self) -> None:
        """Start the bench (on the port it had, after a restart) and wait
        for it to listen. RuntimeError, with its log, if it does not."""
        if self._log is None:
            self._log = open(self.log_path, "ab")  # noqa: ASYNC230 - a local file, once, kept for the bench's life
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "host_tools.cli", "bench", "--host", "127.0.0.1", "--port", str(self.port),
            "--db", str(self.db), cwd=str(ROOT), stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=self._log)
        self.starts += 1
        try:
            line = await asyncio.wait_for(self._listening(), START_S)
        except TimeoutError:
            await self.stop()
            raise RuntimeError(f"the bench did not listen within {START_S:.0f}s; its log: {self.log_path}") from None
        if line is None:
            raise RuntimeError(f"the bench exited (code {await self.proc.wait()}); its log: {self.log_path}")
        self._drain = asyncio.create_task(self._copy_rest(self.proc))
        if self._sampler is None:
            self._sampler = asyncio.create_task(self._sample())

    async def _listening(self) -> str | None:
        async for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace")
            self._log.write(raw)
            found = LISTENING.search(line)
            if found:
                self.port = int(found.group(1))
                return line
        return None

    async def _copy_rest(self, proc: asyncio.subprocess.Process) -> None:
        async for raw in proc.stdout:
            self._log.write(raw)

    async def _sample(self) -> None:
        last: tuple[int, float, float] | None = None
        while True:
            await asyncio.sleep(SAMPLE_S)
            proc = self.proc
            if proc is None or proc.returncode is not None:
                last = None
                continue
            cpu, rss, now = cpu_seconds(proc.pid), rss_mb(proc.pid), time.perf_counter()
            if cpu is None or rss is None:
                continue
            if last is not None and last[0] == proc.pid:
                self.usage.cpu.append((now, 100 * (cpu - last[1]) / (now - last[2])))
            self.usage.rss_mb.append(rss)
            last = (proc.pid, cpu, now)

    async def kill(self) -> None:
        """A crash: SIGKILL, no goodbye to any device."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()

    async def stats(self) -> dict | None:
        """The bench's own counters (GET /api/stats), or None."""
        import aiohttp
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http, \
                    http.get(f"http://127.0.0.1:{self.port}/api/stats") as resp:
                return await resp.json() if resp.status == 200 else None
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return None

    async def stop(self) -> None:
        if self._sampler is not None:
            self._sampler.cancel()
            self._sampler = None
        proc = self.proc
        if proc is not None and proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), STOP_S)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        if self._drain is not None:
            await asyncio.wait([self._drain], timeout=2)
            self._drain = None
        if self._log is not None:
            self._log.close()
            self._log = None
