"""`doorlink fleet`: load a cloud with many agents.

    doorlink fleet --agents N [--uplink json|xml|http] [--rate R] [--duration S]
                   [--micropython K] [--restart-server-at S]
                   [--server URL --devices FILE.csv] [--json FILE]

N agents run the real agent code: N-K as agent.device.Device instances on
this process's one event loop (host_tools/fleet_agent.py), K as real
MicroPython unix-port processes. Each makes `--rate` punches a second
for `--duration` seconds, through the path a fingerprint reader's take
(Thing event -> journal -> uplink). Against the local bench (default: a
`doorlink bench` subprocess with a database of its own, its devices
provisioned here) or any server that speaks the protocol (`--server`,
with the devices' ids and tokens from `--devices`).

Phases, each with a deadline: every agent registers (connect rate); the
load runs (a local bench may be killed and restarted meanwhile: the
reconnect storm); the journals drain; the agents stop; losses are
counted by id: for the local bench every journal id an agent appended
must be in the bench's SQLite, for a foreign server acknowledged. Exit
1 when anything was lost. Ctrl-C ends the run at once, cleanly, with the
figures so far.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import json
import os
import random
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from agent import config, log
from agent.errors import ConfigError
from host_tools.cli_common import CliError, Parents, positive
from host_tools.fleet_agent import InProcessAgent, MicroPythonAgent
from host_tools.fleet_report import render, spread, storm
from host_tools.fleet_server import LocalBench, cpu_seconds, provision, stored_ids
from host_tools.paths import board_path
from host_tools.signals import stop_event

UPLINKS = {"json": "json_ws", "xml": "xml_ws", "http": "http"}
MAX_AGENTS = 5000          # file descriptors: two per agent on this host (agent and bench ends)
MAX_MICROPYTHON = 16       # processes of ~400 KB heap, each with its emulators
MAX_RATE = 20.0            # punches a second per agent
MAX_DURATION_S = 3600.0
CSV_MAX_BYTES = 16 << 20
TOKEN_MAX = 256
LAG_EVERY_S = 0.05         # event-loop lag probe
DRAIN_POLL_S = 0.1
BASE_BOARD = "emulated-attendance"   # the MicroPython agents' board (its heap budget)
MP_POLL_MS = 20            # their reader's poll: a punch every few tens of ms at most
PRESS_WAIT_S = 15.0        # a MicroPython agent's last finger, at the end of the load


class Options:
    """What the run was asked for, checked (CliError for a mistake)."""

    def __init__(self, args: argparse.Namespace) -> None:
        if not 1 <= args.agents <= MAX_AGENTS:
            raise CliError(f"--agents must be from 1 to {MAX_AGENTS}, got {args.agents}",
                           "each agent holds two sockets on this host")
        if not 0 <= args.micropython <= min(args.agents, MAX_MICROPYTHON):
            raise CliError(f"--micropython must be from 0 to {min(args.agents, MAX_MICROPYTHON)}, "
                           f"got {args.micropython}", "each is a process with its own emulators")
        if args.rate > MAX_RATE or args.duration > MAX_DURATION_S:
            raise CliError(f"--rate is at most {MAX_RATE:g}/s and --duration {MAX_DURATION_S:g} s",
                           "a longer run is several runs")
        self.local = args.server is None
        if args.restart_server_at is not None:
            if not self.local:
                raise CliError("--restart-server-at restarts the local bench; a foreign --server is not ours to kill",
                               "leave out --server, or --restart-server-at")
            if args.restart_server_at >= args.duration:
                raise CliError("--restart-server-at must fall within --duration", "give a smaller S")
        if not self.local and args.devices is None:
            raise CliError("a foreign --server needs the devices it knows", "give --devices FILE.csv (id,token lines)")
        self.uplink = UPLINKS[args.uplink]
        if not self.local:
            schemes = config.VALID_UPLINKS[self.uplink]
            if not args.server.startswith(schemes):
                raise CliError(f"--server must start with {' or '.join(schemes)} for --uplink {args.uplink}",
                               f"e.g. {'http://host:8780' if self.uplink == 'http' else 'ws://host:8780/ws'}")
        self.args = args
        self.devices = read_devices(args.devices, args.agents) if args.devices else \
            [(f"fleet-{i:05d}", secrets.token_urlsafe(18)) for i in range(1, args.agents + 1)]


def read_devices(path: str, n: int) -> list[tuple[str, str]]:
    """The first `n` (id, token) rows of a CSV of `id,token` lines (a
    header line is skipped). CliError naming the line for anything else."""
    fix = "one device a line: id,token (ids of letters, digits, '.', '_', '-')"
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > CSV_MAX_BYTES:
            raise CliError(f"{path} is {size} bytes, more than {CSV_MAX_BYTES >> 20} MB", fix)
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise CliError(f"cannot read --devices {path}: {e}", fix) from None
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = [f.strip() for f in line.split(",")]
        if number == 1 and fields[0].lower() in ("id", "device_id", "device", "sn"):
            continue
        if len(fields) != 2 or not fields[1]:
            raise CliError(f"{path} line {number}: expected id,token", fix)
        device_id, token = fields
        # The agent's own rule for a device id (it names the journal's folder).
        problem = config.name_problem(device_id)
        if problem:
            raise CliError(f"{path} line {number}: the id {device_id[:70]!r} {problem}", fix)
        if len(token) > TOKEN_MAX or any(c.isspace() for c in token):
            raise CliError(f"{path} line {number}: a token is up to {TOKEN_MAX} characters, no spaces", fix)
        if device_id in seen:
            raise CliError(f"{path} line {number}: the id {device_id} comes twice", fix)
        seen.add(device_id)
        out.append((device_id, token))
        if len(out) == n:
            return out
    raise CliError(f"{path} holds {len(out)} devices, fewer than --agents {n}",
                   f"add devices or give --agents {len(out)}")


class Fleet:
    def __init__(self, opts: Options, work: Path) -> None:
        self.opts = opts
        self.args = opts.args
        self.work = work
        self.bench = LocalBench(work) if opts.local else None
        self.latencies: list[float] = []
        self.agents: list[InProcessAgent] = []
        self.mp_agents: list[MicroPythonAgent] = []
        self.lag: list[float] = []
        self.lag_from = float("inf")   # lag is sampled from the agents' start on
        self.stop = asyncio.Event()
        k = opts.args.micropython
        self.report: dict = {"agents": {"total": len(opts.devices), "in_process": len(opts.devices) - k,
                                        "micropython": k}}
        self.bench_errors: collections.Counter = collections.Counter()
        self.load_window: tuple[float, float] | None = None   # the load's start and end
        self.fleet_cpu_load: float | None = None

    # -- files ---------------------------------------------------------------------
    def _boards(self) -> tuple[Path, Path]:
        """The in-process agents' board (no peripherals: no pins, no
        emulator) and the MicroPython agents' (the fingerprint reader of
        BASE_BOARD, emulated, within its heap budget)."""
        spec = json.loads(board_path(BASE_BOARD).read_text())
        reader = next(p for p in spec["peripherals"] if p["type"] == "fingerprint")
        # Journals large enough that no outage of a run evicts a record.
        spec["journal"] = {"path": str(self.work / "journal"), "max_kb": 1024, "segment_bytes": 4096}
        mp = dict(spec, name="fleet-micropython", peripherals=[dict(reader, poll_ms=MP_POLL_MS)])
        inproc = dict(spec, name="fleet", peripherals=[])
        paths = self.work / "board.json", self.work / "board-micropython.json"
        for path, board in zip(paths, (inproc, mp), strict=True):
            path.write_text(json.dumps(board, indent=1))
        return paths

    def _site(self, device_id: str, token: str, server: str) -> Path:
        a = self.args
        site = {"server": server, "device_id": device_id, "token": token, "uplink": self.opts.uplink,
                "heartbeat_s": a.heartbeat, "backoff_base_s": a.backoff_base, "backoff_cap_s": a.backoff_cap}
        path = self.work / "sites" / f"{device_id}.json"
        path.write_text(json.dumps(site))
        return path

    # -- phases --------------------------------------------------------------------
    async def _wait(self, seconds: float, done: Callable[[], bool] | None = None) -> bool:
        """Sleep up to `seconds`, or until done() or Ctrl-C: True if done()."""
        end = time.perf_counter() + seconds
        while not self.stop.is_set():
            if done is not None and done():
                return True
            left = end - time.perf_counter()
            if left <= 0:
                return False
            await asyncio.sleep(min(DRAIN_POLL_S, left))
        return False

    async def _watch_lag(self) -> None:
        while True:
            t = time.perf_counter()
            await asyncio.sleep(LAG_EVERY_S)
            if t >= self.lag_from:
                self.lag.append(time.perf_counter() - t - LAG_EVERY_S)

    def _all(self) -> list[InProcessAgent | MicroPythonAgent]:
        return [*self.agents, *self.mp_agents]

    async def run(self) -> dict:
        a = self.args
        cpu0, wall0 = cpu_seconds(), time.perf_counter()
        lag = asyncio.create_task(self._watch_lag())
        try:
            await self._run()
        finally:
            lag.cancel()
            await self._teardown()
            cpu1 = cpu_seconds()
            wall = time.perf_counter() - wall0
            self.report["fleet"] = {
                "cpu_pct_avg": round(100 * (cpu1 - cpu0) / wall, 1) if cpu0 is not None and cpu1 else None,
                "cpu_pct_avg_load": self.fleet_cpu_load,
                "loop_lag_ms": spread(self.lag, 1000)}
            self.report["interrupted"] = self.stop.is_set()
            self.report.update(uplink=a.uplink, local=self.opts.local, server=a.server, rate=a.rate,
                               duration_s=a.duration)
        return self.report

    async def _run(self) -> None:
        (self.work / "sites").mkdir(parents=True, exist_ok=True)
        if self.bench is not None:
            print(f"provisioning {len(self.opts.devices)} devices (scrypt-hashed tokens)...", flush=True)
            await asyncio.to_thread(provision, self.bench.db, self.opts.devices)
            if self.stop.is_set():
                return
            await self.bench.start()
            server = self.bench.url(self.opts.uplink)
        else:
            server = self.args.server
        self._make_agents(server)
        print(f"starting {len(self._all())} agents against {server}...", flush=True)
        await self._connect()
        if not self.stop.is_set():
            await self._load()

    def _make_agents(self, server: str) -> None:
        board, mp_board = self._boards()
        in_process = self.opts.devices[:len(self.opts.devices) - self.args.micropython]
        for device_id, token in in_process:
            self.agents.append(InProcessAgent(device_id, board, self._site(device_id, token, server),
                                              self.latencies))
            # A thousand agents on one heap: each collection of the
            # generational GC walked all the others (13 s to set up 1,000).
            # They live as long as the run: out of the collector's way.
            gc.freeze()
        for device_id, token in self.opts.devices[len(in_process):]:
            self.mp_agents.append(MicroPythonAgent(device_id, mp_board, self._site(device_id, token, server),
                                                   self.work / "journal"))

    async def _connect(self) -> None:
        """Start every agent; wait until each has registered once."""
        refused0 = log.counters.get("auth_failed", 0)
        t0 = self.lag_from = time.perf_counter()   # setting the agents up is not the run
        for agent in self.agents:
            agent.start()
        await asyncio.gather(*(m.start() for m in self.mp_agents))
        await self._wait(self.args.connect_timeout, lambda: all(x.online.up_at for x in self._all()))
        firsts = [x.online.up_at[0] - t0 for x in self._all() if x.online.up_at]
        all_at = max(firsts) if len(firsts) == len(self._all()) else None
        self.report["connect"] = {
            "connected": len(firsts), "all_online_s": round(all_at, 2) if all_at else None,
            "agents_per_s": round(len(firsts) / all_at, 1) if all_at else None,
            "first_s": spread(firsts, 1.0, 2), "refused": log.counters.get("auth_failed", 0) - refused0}
        print(f"{len(firsts)} agents online; load: {self.args.rate}/s per agent for {self.args.duration} s",
              flush=True)

    async def _load(self) -> None:
        """The punches (and the restart, if asked), then the drain."""
        a = self.args
        load_start, load_cpu = time.perf_counter(), cpu_seconds()
        self.load_window = (load_start, load_start + a.duration)
        drivers = [asyncio.create_task(self._drive(x, load_start + a.duration)) for x in self._all()]
        restart = None
        if a.restart_server_at is not None:
            restart = asyncio.create_task(self._restart(load_start + a.restart_server_at))
        try:
            await self._wait(a.duration)
            if load_cpu is not None:
                used = cpu_seconds() - load_cpu
                self.fleet_cpu_load = round(100 * used / (time.perf_counter() - load_start), 1)
        finally:
            for t in drivers:
                t.cancel()
            await asyncio.gather(*drivers, return_exceptions=True)
            if restart is not None:
                await self._finish_restart(restart)
        drained = await self._wait(a.drain, self._drained)
        self.report["records"] = {"drained": drained,
                                  "load_to_last_ack_s": round(time.perf_counter() - load_start, 2)}

    async def _drive(self, agent: InProcessAgent | MicroPythonAgent, end: float) -> None:
        """`--rate` punches a second until `end`, starting at a random
        phase: a fleet does not punch in lockstep."""
        every = 1 / self.args.rate
        at = time.perf_counter() + random.random() * every   # a phase, not a secret
        presses: set[asyncio.Task] = set()
        user = 1
        try:
            while at < end:
                await asyncio.sleep(max(0.0, at - time.perf_counter()))
                if isinstance(agent, InProcessAgent):
                    agent.punch(user)
                else:
                    task = asyncio.create_task(agent.press())
                    presses.add(task)
                    task.add_done_callback(presses.discard)
                user = user % 1000 + 1
                at += every
        finally:
            if presses:
                await asyncio.wait(presses, timeout=PRESS_WAIT_S)

    async def _restart(self, at: float) -> dict:
        await asyncio.sleep(max(0.0, at - time.perf_counter()))
        refused0 = log.counters.get("auth_failed", 0)
        await self._bench_errors()   # a killed bench tells nothing
        print("killing the bench (SIGKILL) and starting it again...", flush=True)
        killed = time.perf_counter()
        await self.bench.kill()
        await self.bench.start()
        back = time.perf_counter()
        return {"killed": killed, "back": back, "refused0": refused0}

    async def _finish_restart(self, task: asyncio.Task) -> None:
        if not task.done():
            task.cancel()
        try:
            r = await task
        except asyncio.CancelledError:
            return
        # Registrations that came after the restart, per agent: given time
        # to finish (the load may end before the storm does).
        await self._wait(self.args.connect_timeout,
                         lambda: all(x.online.first_up_after(r["killed"]) for x in self._all()))
        delays = []
        for x in self._all():
            up = x.online.first_up_after(r["killed"])
            delays.append(None if up is None else max(0.0, up - r["back"]))
        self.report["restart"] = dict(storm(delays),
                                      at_s=self.args.restart_server_at, down_s=round(r["back"] - r["killed"], 2),
                                      refused=log.counters.get("auth_failed", 0) - r["refused0"])

    def _drained(self) -> bool:
        if any(x.pending for x in self.agents):
            return False
        if self.bench is None or not self.mp_agents:
            return True
        stored = stored_ids(self.bench.db)
        return all(len(stored.get(m.device_id, ())) >= m.presses for m in self.mp_agents)

    # -- the end -------------------------------------------------------------------
    async def _teardown(self) -> None:
        await asyncio.gather(*(x.stop() for x in self._all()), return_exceptions=True)
        if self.bench is not None:
            await self._bench_errors()
            await self.bench.stop()
            self.report["bench"] = {"errors": dict(self.bench_errors), "starts": self.bench.starts,
                                    "usage": self.bench.usage.summary(self.load_window)}
        self._count()

    async def _bench_errors(self) -> None:
        """Add the running bench's error counters (GET /api/stats) to the run's."""
        if self.bench.proc is not None and self.bench.proc.returncode is None:
            stats = await self.bench.stats()
            self.bench_errors.update((stats or {}).get("errors") or {})

    def _count(self) -> None:
        stored = stored_ids(self.bench.db) if self.bench is not None and self.bench.db.exists() else None
        appended = acked = 0
        lost: list[str] = []
        n_lost = 0
        for x in self._all():
            try:
                ids, upto = x.ids()
            except (RuntimeError, OSError, ValueError):
                continue   # a MicroPython agent that never started
            appended += len(ids)
            acked += min(upto, len(ids))
            if stored is not None:
                have = stored.get(x.device_id, set())
                missing = [i for i in ids if i not in have]
            else:
                missing = [i for i in ids if i > upto]
            n_lost += len(missing)
            if missing and len(lost) < 10:
                lost.append(f"{x.device_id}:{missing[0]}" + (f"(+{len(missing) - 1})" if len(missing) > 1 else ""))
        records = self.report.setdefault("records", {})
        span = records.get("load_to_last_ack_s")
        records.update(appended=appended, acked=acked,
                       acked_per_s=round(acked / span, 1) if span else None)
        self.report["latency_ms"] = spread(self.latencies, 1000)
        self.report["losses"] = {"count": n_lost, "examples": lost}


def _work_dir(given: str | None) -> tuple[Path, bool]:
    """(folder, made here): the journals go to RAM (/dev/shm) when there is
    one, so the figures are the cloud's and not this host's disk's."""
    if given:
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        return path, False
    shm = Path("/dev/shm")
    base = shm if shm.is_dir() and os.access(shm, os.W_OK) else None
    return Path(tempfile.mkdtemp(prefix="doorlink-fleet-", dir=base)), True


def add_parser(sub: argparse._SubParsersAction, parents: Parents) -> argparse.ArgumentParser:
    p = sub.add_parser("fleet", help="load a cloud with many agents: connect rate, records/s, latency, "
                                     "reconnect storm, losses")
    p.add_argument("--agents", type=int, default=100, help="agents in all (default %(default)s)")
    p.add_argument("--micropython", type=int, default=0, metavar="K",
                   help="K of them as MicroPython unix-port processes (default %(default)s)")
    p.add_argument("--uplink", choices=tuple(UPLINKS), default="json", help="protocol (default %(default)s)")
    p.add_argument("--rate", type=positive, default=0.5, help="punches a second per agent (default %(default)s)")
    p.add_argument("--duration", type=positive, default=30.0, help="seconds of load (default %(default)s)")
    p.add_argument("--server", help="a foreign server (ws://.../ws or http://...) instead of the local bench")
    p.add_argument("--devices", metavar="FILE.csv",
                   help="id,token per line: the devices the server knows (the local bench is provisioned "
                        "with them; default there: generated)")
    p.add_argument("--restart-server-at", type=positive, metavar="S",
                   help="kill the local bench S seconds into the load and start it again")
    p.add_argument("--connect-timeout", type=positive, default=120.0,
                   help="seconds for every agent to register, at start and after a restart (default %(default)s)")
    p.add_argument("--drain", type=positive, default=30.0,
                   help="seconds for the journals to empty after the load (default %(default)s)")
    p.add_argument("--heartbeat", type=positive, default=20.0, help="agents' heartbeat_s (default %(default)s)")
    p.add_argument("--backoff-base", type=positive, default=1.0,
                   help="agents' backoff_base_s (default %(default)s, the agent's)")
    p.add_argument("--backoff-cap", type=positive, default=30.0,
                   help="agents' backoff_cap_s (default %(default)s, the agent's)")
    p.add_argument("--work", help="folder for journals, site files and the bench's database and log "
                                  "(default: a temporary one in /dev/shm, removed afterwards)")
    p.add_argument("--json", metavar="FILE", help="write the report as JSON here too")
    p.add_argument("--log-level", default="error", choices=tuple(log.LEVELS),
                   help="the in-process agents' log level (default %(default)s: a fleet's lines drown the report)")
    p.set_defaults(handler=run)
    return p


def run(args: argparse.Namespace) -> int:
    opts = Options(args)
    if args.backoff_cap < args.backoff_base:
        raise CliError("--backoff-cap must not be below --backoff-base", "raise --backoff-cap")
    work, made = _work_dir(args.work)
    log.set_level(args.log_level)

    async def main() -> dict:
        fleet = Fleet(opts, work)
        fleet.stop = stop_event()
        return await fleet.run()

    keep = not made
    try:
        report = asyncio.run(main())
    except (ConfigError, RuntimeError) as e:
        keep = True
        raise CliError(str(e), f"see the run's files in {work}", code=1) from None
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
    print(render(report), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    if report["interrupted"]:
        return 130
    return 1 if report["losses"]["count"] else 0
