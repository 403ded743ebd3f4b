# Keeps the agent's long-running tasks alive. A task that fails is logged,
# counted and restarted after a backoff; the others keep running, so a flaky
# sensor never takes the door or the cloud link down with it.
import asyncio

from agent import log
from agent.backoff import Backoff
from agent.errors import LinkClosed
from agent.hal import format_exc, ticks_diff, ticks_ms
from agent.tasks import cancel_and_wait

# A run this long resets a task's backoff and clears its failures in a row.
STABLE_RUN_MS = 30000


class Supervisor:
    __slots__ = ("_specs", "_tasks", "restarts", "failing", "_stop")

    def __init__(self):
        self._specs = []
        self._tasks = []
        self.restarts = {}
        # name -> failures in a row that were faults of the board, not of a
        # link or port that went away: what the watchdog's health check
        # reads (agent/health.py).
        self.failing = {}
        self._stop = asyncio.Event()

    def add(self, name, factory, base_s=0.5, cap_s=30.0):
        """factory() -> a fresh coroutine each time the task (re)starts."""
        self._specs.append((name, factory, base_s, cap_s))

    async def _guard(self, name, factory, base_s, cap_s):
        backoff = Backoff(base_s, cap_s, reset_after_s=STABLE_RUN_MS / 1000)
        while True:
            backoff.up()
            started = ticks_ms()
            try:
                await factory()
                log.warn("supervisor", "task %s ended; restarting" % name)
                self.failing[name] = 0
            except asyncio.CancelledError:
                raise
            except (LinkClosed, OSError) as e:
                # A link or a port that is not there (yet): expected, one
                # line; the restart below retries it.
                log.warn("supervisor", "task %s stopped: %s" % (name, str(e) or e.__class__.__name__))
                self.failing[name] = 0
            except Exception as e:  # noqa: BLE001 - any failure is restartable
                log.error("supervisor", "task %s failed: %r\n%s" % (name, e, format_exc(e)))
                stable = ticks_diff(ticks_ms(), started) >= STABLE_RUN_MS
                self.failing[name] = 1 if stable else self.failing.get(name, 0) + 1
            backoff.down()
            self.restarts[name] = self.restarts.get(name, 0) + 1
            log.count("task_restarts")
            await asyncio.sleep(backoff.next_delay())

    async def run(self):
        self._tasks = [asyncio.create_task(self._guard(*s)) for s in self._specs]
        try:
            await self._stop.wait()
        finally:
            for t in self._tasks:
                await cancel_and_wait(t)

    def stop(self):
        self._stop.set()
