# The link under injected faults. Per runtime: AGENTS agents, each behind
# its own fault proxy running ROUNDS seeded fault schedules (drops, resets,
# blackholes, refusals, delays, throttling), agents killed and restarted
# mid-replay, and the bench itself restarted, while the door keeps making
# events. Afterwards every journaled record is in SQLite exactly once and
# every journal is empty.
import asyncio
import random
import signal

from host_tools.chaos import FaultProxy, FaultSchedule
from host_tools.journal_tool import pending_ids, read_cursor
from host_tools.rig import Rig

from e2e_support import eventually

AGENTS = 10
ROUNDS = 10          # AGENTS * ROUNDS seeded schedules per runtime
ROUND_S = 2.0


class Node:
    """One agent (a rig on the shared bench), its proxy and its emulated door."""

    def __init__(self, runtime, index, tmp_path, bench):
        self.device = "chaos-%s-%d" % (runtime, index)
        self.rig = Rig(tmp_path / self.device, runtime=runtime, device_id=self.device, token="tok-" + self.device,
                       bench=bench, site={"heartbeat_s": 0.5, "connect_timeout_s": 2, "backoff_base_s": 0.1,
                                          "backoff_cap_s": 1.0, "backoff_reset_s": 2})
        self.proxy = FaultProxy("127.0.0.1", bench.port, seed=index)

    @property
    def session(self):
        return self.rig.session

    async def start(self, telemetry_s=1):
        url = "ws://127.0.0.1:%d/ws" % self.proxy.port
        await self.rig.start_agent(self.rig.write_site(url, telemetry_interval_s=telemetry_s))

    async def kill(self):
        if self.session.proc.returncode is not None:
            raise AssertionError("%s exited by itself (code %s):\n%s" % (
                self.device, self.session.proc.returncode, self.rig.output(25)))
        self.session.proc.send_signal(signal.SIGKILL)
        await self.rig.stop_agent()

    async def churn_door(self, stop):
        # The door keeps opening and closing: events to journal all along.
        while not stop.is_set():
            if self.session is None:  # between a kill and the restart: no door to move
                await asyncio.sleep(0.05)
                continue
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
        return self.rig.journal / self.device


async def test_every_record_arrives_once_through_faults(runtime, tmp_path, figure):
    # The shared bench is a rig of its own (no agent): the nodes' devices
    # are provisioned on it, and it restarts on the same port and file.
    cloud = Rig(tmp_path / "cloud", device_id="chaos-bench-probe")
    bench = await cloud.start_bench()
    nodes = [Node(runtime, i, tmp_path, bench) for i in range(AGENTS)]
    for n in nodes:
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
                await cloud.stop_bench()
                await asyncio.sleep(0.5)
                bench = await cloud.restart_bench()
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
            await n.rig.stop()
            await n.proxy.stop()
        await cloud.stop()
