# Door: lock relay + door-position sensor. Logic only; the pins come from
# the hal. The relay fails to locked at start (safe state) and an unlock
# always ends: after its pulse, or early once the door opened and closed
# again (so a held-open strike does not stay unlocked behind the visitor).
import asyncio

from agent import log
from agent import records as r
from agent.codecs.values import is_int
from agent.errors import CommandError
from agent.thing import INT, ONE_OF

POLL_MS = 50
MIN_UNLOCK_MS = 100
MAX_UNLOCK_MS = 60000
# Who may ask for an unlock through a command: the cloud, or a cloud's grant
# for a punch. An enumeration, never free text: a command must not pass
# itself off as a fingerprint or an exit button in the audit trail.
SOURCES = ("cloud", "cloud_access")


class Door:
    __slots__ = ("thing", "cfg", "relay", "sensor", "_relock", "_opened_during_unlock")

    def __init__(self, thing, io, cfg):
        self.thing = thing
        self.cfg = cfg
        self.relay = io.output(cfg["relay_pin"], cfg["relay_active_high"])
        self.sensor = io.input(cfg["sensor_pin"])
        self._relock = None
        self._opened_during_unlock = False
        self.relay.off()
        thing.prop("lock", "locked")
        thing.prop("door", "unknown")
        thing.prop("unlock_ms", cfg["unlock_ms"], setter=self._set_unlock_ms)
        thing.command("unlock", self.unlock,
                      {"duration_ms": (INT, MIN_UNLOCK_MS, MAX_UNLOCK_MS), r.SOURCE: (ONE_OF, SOURCES)})
        thing.command("lock", self.lock)

    def _door_state(self):
        level = self.sensor.value()
        if level is None:
            return "unknown"
        return "open" if level == self.cfg["sensor_open_level"] else "closed"

    @staticmethod
    def _check_ms(name, ms):
        if not is_int(ms) or not MIN_UNLOCK_MS <= ms <= MAX_UNLOCK_MS:
            raise CommandError("%s must be an integer from %d to %d"
                               % (name, MIN_UNLOCK_MS, MAX_UNLOCK_MS))
        return ms

    async def _set_unlock_ms(self, ms):
        # The default pulse; the cloud tunes it per door (slow strikes, wheelchairs).
        self.thing.update("unlock_ms", self._check_ms("unlock_ms", ms))

    async def unlock(self, payload):
        ms = payload.get("duration_ms", self.thing.get("unlock_ms"))
        source = payload.get(r.SOURCE, "cloud")
        if self.thing.get("lock") != "unlocked":
            # The audit record first: a door opening nobody can account for
            # is worse than a door that stays shut (egress, which must never
            # wait for a journal, comes with the exit button and does not go
            # through here).
            if not self.thing.emit("door_unlocked", {r.DOOR: self.cfg["name"], r.SOURCE: source,
                                                     "duration_ms": ms}):
                log.count("unlocks_not_journaled")
                raise CommandError("the unlock could not be journaled, so the door stays locked")
            self.thing.update("lock", "unlocked")
        self.relay.on()
        self._opened_during_unlock = False
        if self._relock is not None:
            self._relock.cancel()
        self._relock = asyncio.create_task(self._relock_after(ms))
        log.info("door", "unlocked for %d ms (%s)" % (ms, source))
        return {"lock": "unlocked", "duration_ms": ms}

    async def lock(self, payload):
        if self._relock is not None:
            self._relock.cancel()
            self._relock = None
        self._lock_now("cloud")
        return {"lock": "locked"}

    def _lock_now(self, reason):
        self.relay.off()
        if self.thing.get("lock") != "locked":
            self.thing.update("lock", "locked")
            self.thing.emit("door_locked", {r.DOOR: self.cfg["name"], "reason": reason})
            log.info("door", "locked (%s)" % reason)

    async def _relock_after(self, ms):
        try:
            await asyncio.sleep(ms / 1000)
            self._relock = None
            self._lock_now("timeout")
        except asyncio.CancelledError:
            pass

    async def run(self):
        """Watch the door sensor (a supervised task)."""
        while True:
            state = self._door_state()
            prev = self.thing.get("door")
            if state != prev:
                self.thing.update("door", state)
                if prev != "unknown" or state == "open":
                    self.thing.emit("door_opened" if state == "open" else "door_closed",
                                    {r.DOOR: self.cfg["name"]})
                if state == "open" and self._relock is not None:
                    self._opened_during_unlock = True
                elif state == "closed" and self._opened_during_unlock and self._relock is not None:
                    self._relock.cancel()
                    self._relock = None
                    self._lock_now("door closed")
            await asyncio.sleep(POLL_MS / 1000)
