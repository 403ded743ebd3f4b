# The watchdog is fed only while the agent is healthy: the loop runs and no
# critical task (uplink, io, doors) is crash-looping. A link that is down is
# not a fault of the board and must not starve the watchdog.
import asyncio

from agent import log
from agent.boot_state import BootState
from agent.errors import LinkClosed
from agent.health import FAILS, Health
from agent.supervisor import Supervisor

from support import tmpdir

CFG = {"watchdog_s": 0.2, "safe_mode_after": 3, "stable_s": 3600}   # fed every 50 ms


class Dog:
    """The hal's watchdog as the health task sees it (machine.WDT on ESP32)."""

    def __init__(self):
        self.feeds = 0
        self.timeout_ms = None


class Io:
    def __init__(self):
        self.dog = Dog()

    def watchdog(self, timeout_ms):
        self.dog.timeout_ms = timeout_ms
        return self

    def feed(self):
        self.dog.feeds += 1


async def _until(cond, limit=200):
    for _ in range(limit):
        if cond():
            return True
        await asyncio.sleep(0.01)
    return False


def _failing(exc, runs):
    async def task():
        runs.append(1)
        await asyncio.sleep(0)
        raise exc
    return task


async def _run(sup, health, body):
    sup.add("health", health.run)
    task = asyncio.create_task(sup.run())
    try:
        await body()
    finally:
        sup.stop()
        await asyncio.wait_for(task, 2)


async def test_a_crash_looping_door_starves_the_watchdog():
    sup, io, runs = Supervisor(), Io(), []
    sup.add("door:front", _failing(RuntimeError("relay driver bug"), runs), base_s=0.01, cap_s=0.02)
    health = Health(sup, None, io, CFG)
    starved = log.counters.get("watchdog_starved", 0)

    async def body():
        assert await _until(lambda: health.problem is not None)
        assert "door:front" in health.problem
        fed = io.dog.feeds
        await asyncio.sleep(0.3)   # six feeding periods
        assert io.dog.feeds == fed, "fed while a door crash-loops"
        assert len(runs) >= FAILS
    await _run(sup, health, body)
    assert io.dog.timeout_ms == 200
    assert log.counters["watchdog_starved"] == starved + 1   # once per episode, not per check


async def test_a_cloud_that_is_down_keeps_the_watchdog_fed():
    sup, io, runs = Supervisor(), Io(), []
    sup.add("uplink", _failing(LinkClosed("connection refused"), runs), base_s=0.01, cap_s=0.02)
    sup.add("climate:lobby", _failing(ValueError("sensor bug"), []), base_s=0.01, cap_s=0.02)
    health = Health(sup, None, io, CFG)

    async def body():
        assert await _until(lambda: len(runs) > FAILS + 2 and io.dog.feeds > 3)
        assert health.problem is None   # not critical: a sensor bug is the supervisor's business
    await _run(sup, health, body)


async def test_fed_again_once_the_failing_task_runs():
    sup, io, state = Supervisor(), Io(), {"broken": True}

    async def door():
        if state["broken"]:
            raise RuntimeError("bug")
        await asyncio.sleep(10)
    sup.add("door:front", door, base_s=0.01, cap_s=0.02)
    health = Health(sup, None, io, CFG)

    async def body():
        assert await _until(lambda: health.problem is not None)
        state["broken"] = False    # fixed by a restart of the task... which never fails again
        sup.failing["door:front"] = 0
        fed = io.dog.feeds
        assert await _until(lambda: health.problem is None and io.dog.feeds > fed)
    await _run(sup, health, body)


async def test_a_stable_run_resets_the_boot_counter_and_leaves_safe_mode():
    folder = tmpdir()
    for _ in range(3):
        BootState(folder, 3).begin()
    boot = BootState(folder, 3)
    assert boot.begin()
    left = []
    sup = Supervisor()
    health = Health(sup, boot, Io(), {"watchdog_s": 0.2, "stable_s": 0.1}, on_stable=lambda: left.append(1))

    async def body():
        assert await _until(lambda: left)
    await _run(sup, health, body)
    assert health.stable and left == [1]
    assert not BootState(folder, 3).begin()   # the count was reset: a normal boot


async def test_no_watchdog_no_feeding_but_health_still_counts_stability():
    sup, boot = Supervisor(), BootState(tmpdir(), 3)
    boot.begin()
    health = Health(sup, boot, object(), {"watchdog_s": 30, "stable_s": 0.05})

    async def body():
        assert await _until(lambda: health.stable, 300)
    await _run(sup, health, body)
