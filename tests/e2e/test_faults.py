# The link under injected faults. Per runtime: AGENTS agents, each behind
# its own fault proxy running ROUNDS seeded fault schedules (drops, resets,
# blackholes, refusals, delays, throttling), agents killed and restarted
# mid-replay, and the bench itself restarted, while the door keeps making
# events. Afterwards every journaled record is in SQLite exactly once and
# every journal is empty.
import asyncio
import json
import random
import signal

from e2e_support import BOARD, eventually

from host_tools.bench import start_bench
from host_tools.chaos import FaultProxy, FaultSchedule
from host_tools.journal_tool import pending_ids, read_cursor
from host_tools.runner import start_board

AGENTS = 10
ROUNDS = 10          # AGENTS * ROUNDS seeded schedules per runtime
ROUND_S = 2.0


def _site(path, device, url, telemetry_s):
    path.write_text(json.dumps({
        "server": url, "device_id": device, "token": "tok-" + device,
        "telemetry_interval_s": telemetry_s, "heartbeat_s": 0.5, "connect_timeout_s": 2,
        "backoff_base_s": 0.1, "backoff_cap_s": 1.0, "backoff_reset_s": 2}))
    return path


class Node:
    """One agent, its proxy and its emulated door."""

    def __init__(self, runtime, index, tmp_path, bench_port):
        self.runtime = runtime
        self.device = "chaos-%s-%d" % (runtime, index)
        self.dir = tmp_path / self.device
        self.dir.mkdir()
        self.journal = self.dir / "journal"
        self.proxy = FaultProxy("127.0.0.1", bench_port, seed=index)
        self.session = None
        self.lines = []

    async def start(self, telemetry_s=0.3):
        site = _site(self.dir / "site.json", self.device, "ws://127.0.0.1:%d/ws" % self.proxy.port,
                     telemetry_s)
        self.session = await start_board(BOARD, site, runtime=self.runtime, emulator_port=0,
                                         on_line=self.lines.append, journal=self.journal)

    async def kill(self):
        if self.session.proc.returncode is not None:
            raise AssertionError("%s exited by itself (code %s):\n%s" % (
                self.device, self.session.proc.returncode, "\n".join(self.lines[-25:])))
        self.session.proc.send_signal(signal.SIGKILL)
        await self.session.stop()

    async def churn_door(self, stop):
        # The door keeps opening and closing: events to journal all along.
        while not stop.is_set():
            emu = self.session.emulator
            emu.set_door_open(True)
            await asyncio.sleep(0.1)
            emu.set_door_open(False)
            await asyncio.sleep(0.15)

    async def rounds(self, seed0, stop):
        rng = random.Random(seed0)
        for r in range(ROUNDS):
            plan = FaultSchedule.random(seed0 * 1000 + r, ROUND_S, mean_gap_s=0.5)
            runner = asyncio.create_task(plan.run(self.proxy))
            if rng.random() < 0.3:  # an agent restart (power cut) mid-round
                await asyncio.sleep(rng.uniform(0.2, ROUND_S - 0.2))
                await self.kill()
                await self.start()
            await asyncio.wait_for(runner, ROUND_S + 5)
        self.proxy.heal()

    def folder(self):
        return self.journal / self.device


async def test_every_record_arrives_once_through_faults(runtime, tmp_path, figure):
    db = str(tmp_path / "bench.sqlite3")
    bench = await start_bench("127.0.0.1", 0, db)
    port = bench.port
    nodes = [Node(runtime, i, tmp_path, port) for i in range(AGENTS)]
    for n in nodes:
        bench.store.add_device(n.device, "tok-" + n.device)
        await n.proxy.start()
        await n.start()
    stop = asyncio.Event()
    churn = [asyncio.create_task(n.churn_door(stop)) for n in nodes]
    restarts = 0
    try:
        work = asyncio.gather(*(n.rounds(i + 1, stop) for i, n in enumerate(nodes)))
        while not work.done():  # the bench restarts now and then, too
            await asyncio.wait([work], timeout=3.0)
            if not work.done():
                await bench.stop()
                await asyncio.sleep(0.5)
                bench = await start_bench("127.0.0.1", port, db)
                restarts += 1
        await work
        stop.set()
        await asyncio.gather(*churn)

        # Quiet ending: restart every agent with slow telemetry and let it drain.
        for n in nodes:
            await n.kill()
            await n.start(telemetry_s=600)

        def drained():
            return all(not pending_ids(n.folder()) for n in nodes)
        await eventually(drained, timeout=60, every=0.5)

        total = 0
        for n in nodes:
            rows = bench.store.telemetry_rows(n.device) + bench.store.event_rows(n.device)
            ids = [r["record_id"] for r in rows]
            last = read_cursor(n.folder())
            assert len(ids) == len(set(ids)), n.device
            assert set(ids) == set(range(1, last + 1)), (n.device, sorted(set(range(1, last + 1)) - set(ids))[:10])
            total += len(ids)
        faults = sum(sum(v for k, v in n.proxy.stats["faults"].items() if k != "heal") for n in nodes)
        figure("faults (%s): %d schedules, %d injected faults, %d bench restarts, %d records each stored once"
               % (runtime, AGENTS * ROUNDS, faults, restarts, total))
    finally:
        stop.set()
        for n in nodes:
            if n.session:
                await n.session.stop()
            await n.proxy.stop()
        await bench.stop()
