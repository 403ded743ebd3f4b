# Keeps the agent's long-running tasks alive. A task that fails is logged,
# counted and restarted after a backoff; the others keep running, so a flaky
# sensor never takes the door or the cloud link down with it.
import asyncio

from agent import log
from agent.backoff import Backoff
from agent.errors import LinkClosed
from agent.hal import format_exc
from agent.tasks import cancel_and_wait


class Supervisor:
    __slots__ = ("_specs", "_tasks", "restarts", "_stop")

    def __init__(self):
        self._specs = []
        self._tasks = []
        self.restarts = {}
        self._stop = asyncio.Event()

    def add(self, name, factory, base_s=0.5, cap_s=30.0):
        """factory() -> a fresh coroutine each time the task (re)starts."""
        self._specs.append((name, factory, base_s, cap_s))

    async def _guard(self, name, factory, base_s, cap_s):
        backoff = Backoff(base_s, cap_s, reset_after_s=30)
        while True:
            backoff.up()
            try:
                await factory()
                log.warn("supervisor", "task %s ended; restarting" % name)
            except asyncio.CancelledError:
                raise
            except (LinkClosed, OSError) as e:
                # A link or a port that is not there (yet): expected, one
                # line; the restart below retries it.
                log.warn("supervisor", "task %s stopped: %s" % (name, str(e) or e.__class__.__name__))
            except Exception as e:  # noqa: BLE001 - any failure is restartable
                log.error("supervisor", "task %s failed: %r\n%s" % (name, e, format_exc(e)))
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
