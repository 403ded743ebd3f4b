# The health task on an ESP32 (the stand-in `machine`, under MicroPython):
# it starts the chip's watchdog and feeds it while the agent is healthy; a
# door task that keeps crashing starves it, and the chip resets - what
# turns a crash loop into a counted unstable boot and, repeated, safe mode.
import asyncio

import machine

from agent.health import Health
from agent.supervisor import Supervisor

STUBS = True
HEAP_KB = 192
TIMEOUT_S = 60
CFG = {"watchdog_s": 0.4, "stable_s": 3600}   # fed every 100 ms


def _io():
    from agent.hal.esp32 import Esp32IO
    return Esp32IO()


async def _run(sup, health, body):
    sup.add("health", health.run)
    task = asyncio.create_task(sup.run())
    try:
        return await body()
    finally:
        sup.stop()
        await asyncio.wait_for(task, 2)


async def _until(cond, limit=300):
    for _ in range(limit):
        if cond():
            return True
        await asyncio.sleep(0.01)
    return False


async def test_a_healthy_agent_keeps_the_chip_watchdog_fed():
    sup = Supervisor()

    async def door():
        await asyncio.Event().wait()   # runs, never fails
    sup.add("door:front", door)

    async def body():
        assert await _until(lambda: machine.wdt[0] is not None and machine.wdt[0].feeds >= 5)
        assert not machine.wdt[0].expired()
    await _run(sup, Health(sup, None, _io(), CFG), body)
    assert machine.wdt[0].timeout == 400


async def test_a_crash_looping_door_lets_the_chip_watchdog_reset_the_board():
    sup = Supervisor()

    async def door():
        await asyncio.sleep(0)
        raise RuntimeError("door bug")
    sup.add("door:front", door, base_s=0.01, cap_s=0.02)
    health = Health(sup, None, _io(), CFG)

    async def body():
        assert await _until(lambda: health.problem is not None)
        fed = machine.wdt[0].feeds
        assert await _until(lambda: machine.wdt[0].expired())   # the chip would reset now
        assert machine.wdt[0].feeds == fed
    await _run(sup, health, body)
