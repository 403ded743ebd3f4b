# Whether the agent is healthy, and what follows from it: the watchdog is
# fed only while it is, and a boot counts as stable only after it has been
# for a while (docs/door-controller.md, section 7).
#
# Healthy means:
# - the event loop runs: this check is itself a task, so a loop blocked by
#   a stuck call never feeds the watchdog and the board resets;
# - no critical task (the uplink, the hal's link, every door) is
#   crash-looping: FAILS failures in a row that are faults of this board
#   (Supervisor.failing). A link that is down is not one: a cloud outage
#   must not reset a door controller, which would not bring the cloud back
#   and would end in safe mode.
# A task waiting on an await is not called stuck: every network operation
# has its own deadline, and nothing outside a task can tell waiting from
# stuck.
import asyncio

from agent import hal, log

FAILS = 3
CRITICAL = ("uplink", "io", "door:")
# Safe mode is there to keep the cloud link up: a door that fails there is
# logged and restarted, but resetting the board for it would take the link down.
SAFE_MODE_CRITICAL = ("uplink", "io")
IDLE_MS = 1000     # how often health is looked at where there is no watchdog


def _critical(name, critical):
    for c in critical:
        if name == c or (c.endswith(":") and name.startswith(c)):
            return True
    return False


def open_watchdog(io, timeout_ms):
    """The watchdog to feed -> (object with feed(), its timeout in ms), or
    (None, None): the hal's own (machine.WDT on ESP32), else systemd's on
    CPython when the service has one."""
    make = getattr(io, "watchdog", None)
    dog = make(timeout_ms) if make is not None else None
    if dog is not None:
        return dog, timeout_ms
    if not hal.MICROPYTHON:
        from agent.hal import systemd
        dog = systemd.watchdog()
        if dog is not None:
            return dog, dog.timeout_ms
    return None, None


def notify(*lines):
    """Tell the service manager (systemd on CPython), if there is one."""
    if not hal.MICROPYTHON:
        from agent.hal import systemd
        systemd.notify(*lines)


class Health:
    __slots__ = ("_supervisor", "_boot", "_io", "_cfg", "_critical", "_on_stable", "_dog", "_period_ms",
                 "problem", "stable")

    def __init__(self, supervisor, boot, io, cfg, critical=CRITICAL, on_stable=None):
        self._supervisor = supervisor
        self._critical = critical    # names of the tasks that must not crash-loop ("door:" = every door)
        self._boot = boot            # BootState, or None (no counter kept)
        self._io = io
        self._cfg = cfg              # the board's "health" fields
        self._on_stable = on_stable
        self._dog = None
        self._period_ms = IDLE_MS
        self.problem = None          # why the agent is not healthy, or None
        self.stable = False          # this boot has run stably

    def check(self):
        """Why the agent is unhealthy now, or None."""
        failing = self._supervisor.failing
        for name in failing:
            if failing[name] >= FAILS and _critical(name, self._critical):
                return "task %s failed %d times in a row" % (name, failing[name])
        return None

    async def run(self):
        """The supervised task: check, feed, tell systemd."""
        if self._dog is None:
            # Started only now, once every task is: a hardware watchdog
            # cannot be stopped, and the journal's recovery before this
            # may take longer than its timeout.
            self._dog, timeout_ms = open_watchdog(self._io, int(self._cfg["watchdog_s"] * 1000))
            if self._dog is not None:
                self._period_ms = timeout_ms // 4
                log.info("health", "watchdog fed every %d ms" % self._period_ms)
        notify("READY=1", "STATUS=running")
        stable_ms = int(self._cfg["stable_s"] * 1000)
        since = hal.ticks_ms()
        while True:
            problem = self.check()
            if problem is None:
                if self._dog is not None:
                    self._dog.feed()
                if not self.stable and hal.ticks_diff(hal.ticks_ms(), since) >= stable_ms:
                    self._stable()
            else:
                since = hal.ticks_ms()
            if (problem is None) != (self.problem is None):
                self._changed(problem)
            self.problem = problem
            await asyncio.sleep(self._period_ms / 1000)

    def _changed(self, problem):
        if problem is None:
            log.info("health", "healthy again: the watchdog is fed")
            notify("STATUS=running")
        else:
            log.count("watchdog_starved")
            log.error("health", "unhealthy, the watchdog is no longer fed: %s" % problem)
            notify("STATUS=unhealthy: " + problem)

    def _stable(self):
        self.stable = True
        log.info("health", "running stably: boot counter reset")
        if self._boot is not None:
            self._boot.stable()
        if self._on_stable is not None:
            self._on_stable()
