"""The rig: a whole system on this host - bench cloud, a device provisioned
on it, the device's site file, its board (emulated peripherals) and the
agent process - started together and stopped in the right order.

`doorlink demo`, the benchmarks (`doorlink perf`) and the end-to-end tests
all start their systems here, so "how do I get a bench and an agent that
talk" has one answer. Every piece can be taken apart where a test needs it:
the bench can be shared (a fleet), restarted on the same port and file (an
outage), or absent (a hostile cloud of the test's own); the site file takes
overrides; the board file can be patched per peripheral; with
`device_id=None` there is no device and the bench holds only what its
caller provisions.

    async with Rig(workdir, board="emulated-attendance", uplink="xml_ws") as rig:
        await rig.start_bench()
        await rig.start_agent()
        await rig.wait_registered()
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from host_tools.bench import Bench, start_bench
from host_tools.bench.hub import Observer
from host_tools.paths import board_path
from host_tools.runner import BoardSession, start_board

DEVICE = "rig-device-1"
TOKEN = "tok_rig_only"          # an obvious test value
REGISTERED = "registered as"    # the agent's line once its cloud took it


class Rig:
    """bench + provisioned device + site file + board + agent."""

    def __init__(self, workdir: str | Path, *, board: str | Path = "emulated", runtime: str | None = None,
                 device_id: str | None = DEVICE, token: str = TOKEN, uplink: str = "json_ws",
                 site: dict[str, Any] | None = None, peripherals: dict[str, dict] | None = None,
                 bench: Bench | None = None, observer: Observer | None = None,
                 on_line: Callable[[str], object] | None = None, visitor: bool = False,
                 log_level: str = "info", emulator_port: int = 0, romfs: bool = False) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.runtime = runtime
        self.device_id = device_id
        self.token = token
        self.uplink = uplink
        self.site_overrides = dict(site or {})
        self.board_path = self._board_file(board, peripherals or {})
        self.journal = self.workdir / "journal"
        self.lines: list[str] = []
        self.stamps: list[float] = []   # time.perf_counter() when each line arrived (benchmarks)
        self.session: BoardSession | None = None
        self.bench = bench
        self._owns_bench = False
        self._bench_up = False
        self._bench_at: tuple[str, int, str, ssl.SSLContext | None] | None = None
        self._observer = observer
        self._on_line = on_line
        self._visitor = visitor
        self._log_level = log_level
        self._emulator_port = emulator_port
        self.romfs = romfs   # MicroPython: the agent's code run in place from a ROMFS image
        if bench is not None:
            self._provision(bench)

    # -- files -------------------------------------------------------------------
    def _board_file(self, board: str | Path, peripherals: dict[str, dict]) -> Path:
        """The board file, patched: peripherals={"fingerprint": {"poll_ms": 20}}."""
        path = board_path(board)
        if not peripherals:
            return path
        spec = json.loads(path.read_text())
        for p in spec["peripherals"]:
            p.update(peripherals.get(p["type"], {}))
        patched = self.workdir / path.name
        patched.write_text(json.dumps(spec, indent=2))
        return patched

    def server_url(self) -> str:
        """The bench's URL for this rig's uplink (http:// for CloudSolution)."""
        if self.bench is None:
            raise RuntimeError("no bench: start_bench() first, or give write_site a server")
        return self.bench.http_url if self.uplink == "http" else self.bench.url

    def write_site(self, server: str | None = None, **overrides: Any) -> Path:
        """The site file: this rig's device on `server` (default: its bench),
        the rig's overrides, then these."""
        site = {"server": server or self.server_url(), "device_id": self.device_id, "token": self.token,
                "uplink": self.uplink}
        site.update(self.site_overrides)
        site.update(overrides)
        path = self.workdir / "site.json"
        path.write_text(json.dumps(site, indent=2))
        return path

    # -- bench -------------------------------------------------------------------
    async def start_bench(self, port: int = 0, db: str | Path | None = None,
                          ssl_context: ssl.SSLContext | None = None, host: str = "127.0.0.1") -> Bench:
        """A bench of this rig's own, with the device provisioned on it."""
        db = str(db or self.workdir / "bench.sqlite3")
        self.bench = await start_bench(host, port, db, observer=self._observer, ssl_context=ssl_context)
        self._provision(self.bench)
        self._owns_bench = self._bench_up = True
        self._bench_at = (host, self.bench.port, db, ssl_context)
        return self.bench

    def _provision(self, bench: Bench) -> None:
        if self.device_id is not None:
            bench.store.add_device(self.device_id, self.token)

    async def stop_bench(self) -> None:
        """The cloud goes away (an outage); restart_bench() brings it back."""
        if self._owns_bench and self._bench_up:
            self._bench_up = False
            await self.bench.stop()

    async def restart_bench(self) -> Bench:
        """The same bench again: same port, same SQLite file."""
        host, port, db, ctx = self._bench_at
        self.bench = await start_bench(host, port, db, observer=self._observer, ssl_context=ctx)
        self._bench_up = True
        return self.bench

    # -- agent -------------------------------------------------------------------
    def _line(self, line: str) -> None:
        self.stamps.append(time.perf_counter())
        self.lines.append(line)
        if self._on_line is not None:
            self._on_line(line)

    async def start_agent(self, site: Path | None = None, runtime: str | None = None,
                          server: str | None = None, control: str | None = None) -> BoardSession:
        """The agent on the board, with its emulators; the site file is
        written now unless one is given. `server` and `control` are the
        agent's --server and --control."""
        site = site or self.write_site()
        self.session = await start_board(self.board_path, site, runtime=runtime or self.runtime,
                                         server=server, control=control, on_line=self._line,
                                         emulator_port=self._emulator_port, visitor=self._visitor,
                                         log_level=self._log_level, journal=self.journal, romfs=self.romfs)
        return self.session

    async def stop_agent(self) -> int | None:
        if self.session is None:
            return None
        session, self.session = self.session, None
        return await session.stop()

    async def wait_for(self, text: str, timeout: float = 20.0, after: int = 0) -> int:
        """The index of the first agent line (from line `after` on) holding
        `text` (self.lines[i], arrived at self.stamps[i])."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while True:
            for i in range(after, len(self.lines)):
                if text in self.lines[i]:
                    return i
            if self.session is not None and self.session.ended:
                raise AssertionError(f"agent exited (code {self.session.proc.returncode}) before "
                                     f"{text!r}:\n{self.output()}")
            if loop.time() > end:
                raise AssertionError(f"no agent line with {text!r} within {timeout}s:\n{self.output()}")
            await asyncio.sleep(0.02)

    async def wait_registered(self, timeout: float = 20.0) -> int:
        return await self.wait_for(REGISTERED, timeout)

    def output(self, last: int | None = None) -> str:
        """What the agent printed: all of it, or the `last` lines."""
        return "\n".join(self.lines if last is None else self.lines[-last:])

    # -- all of it ------------------------------------------------------------------
    async def stop(self) -> None:
        """Agent first (it must not see the bench vanish at shutdown), then
        a bench of the rig's own."""
        try:
            await self.stop_agent()
        finally:
            await self.stop_bench()

    async def __aenter__(self) -> Rig:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
