# One door: its lock relay, door-position sensor, exit button (REX) and
# tamper switch. Logic only; the pins come from the hal, the commands that
# reach a door by name from peripherals/doors.py, and the decision who may
# enter from the access controller, which calls grant().
#
# Everything runs from poll(), every POLL_MS: the exit button is seen
# within one poll, a pulse ends on the first poll past its deadline, and no
# task or timer is made per unlock (a door allocates nothing while idle).
# What the relay does is configuration, never code: relay_active_high is the
# pin level that energises it (the hal's business), unlock_energised whether
# energising opens the lock (a strike) or closes it (a maglock).
import asyncio

from agent import clock, log
from agent import records as r
from agent.errors import CommandError
from agent.hal import ticks_add, ticks_diff, ticks_ms

POLL_MS = 50
MIN_UNLOCK_MS = 100
MAX_UNLOCK_MS = 60000
MAX_HELD_OPEN_S = 86400
NORMAL, NORMAL_OPEN, LOCKED = "normal", "normal_open", "locked"
MODES = (NORMAL, NORMAL_OPEN, LOCKED)
FORCED, HELD_OPEN, TAMPER = "forced", "held_open", "tamper"
# What a kept door state may hold (peripherals/door_state.py): its modes,
# the alarms that outlive a restart (held_open ends with the door closing),
# the ranges of unlock_ms and held_open_s.
STATE_RULES = (MODES, (FORCED, TAMPER), (MIN_UNLOCK_MS, MAX_UNLOCK_MS), (1, MAX_HELD_OPEN_S))
SCHEDULE_EVERY_MS = 1000   # the wall clock is read this often for normal-open hours


class Debounced:
    """An input pin's level, taken once it has held for `ms`; a level equal
    to `lead` is taken at once (the exit button: egress does not wait out a
    debounce, only a release does). `was` is the level before the last
    change, None when that change was the first reading."""
    __slots__ = ("pin", "ms", "lead", "level", "was", "raw", "since")

    def __init__(self, pin, ms, lead=None):
        self.pin = pin
        self.ms = ms
        self.lead = lead
        self.level = None
        self.was = None
        self.raw = None
        self.since = 0

    def changed(self, now):
        v = self.pin.value()
        if v is None:
            return False   # not known yet (an emulated board before its emulator answers)
        if v != self.raw:
            self.raw = v
            self.since = now
        if v == self.level or (v != self.lead and ticks_diff(now, self.since) < self.ms):
            return False
        self.was = self.level
        self.level = v
        return True


class Door:
    __slots__ = ("thing", "cfg", "name", "gmt", "relay", "sensor", "rex_in", "tamper_in",
                 "p_lock", "p_door", "p_mode", "p_alarms", "p_unlock_ms",
                 "commanded", "_sched_open", "_held", "_released", "_until", "_opened", "_ajar_at",
                 "_open_at", "_held_raised", "_alarms", "_sched_at", "_folder", "_announce")

    def __init__(self, thing, io, cfg, gmt=0, folder=None):
        """`folder`: where the door's state outlives a restart (the board's
        journal.path, peripherals/door_state.py); None keeps nothing."""
        self.thing = thing
        self.cfg = cfg
        self.name = name = cfg["name"]
        self.gmt = gmt
        # Claimed at the locked level: never an instant of the unlock level.
        self.relay = io.output(cfg["relay_pin"], cfg["relay_active_high"], energised=not cfg["unlock_energised"])
        # Dry contacts to ground throughout (access-control wiring): the pull-up
        # is what makes NC read 1 when open, and a button to ground read 0.
        ms = cfg["debounce_ms"]
        self.sensor = None
        if cfg["sensor_pin"] is not None and cfg["sensor"] != "none":
            self.sensor = Debounced(io.input(cfg["sensor_pin"], pull="up"), ms)
        self.rex_in = None
        if cfg["rex_pin"] is not None:
            # Latched too: a press shorter than the time the event loop was
            # busy elsewhere (a user store rewrite) falls between two polls.
            self.rex_in = Debounced(io.input(cfg["rex_pin"], pull="up", latch=cfg["rex_level"]), ms,
                                    cfg["rex_level"])
        self.tamper_in = None
        if cfg["tamper_pin"] is not None:
            self.tamper_in = Debounced(io.input(cfg["tamper_pin"], pull="up"), ms)
        self.p_lock = name + ".lock"
        self.p_door = name + ".door"
        self.p_mode = name + ".mode"
        self.p_alarms = name + ".alarms"
        self.p_unlock_ms = name + ".unlock_ms"
        self.commanded = NORMAL    # the mode the cloud set; the schedule may hold a normal door open
        self._sched_open = False
        self._held = False         # hold_fail_state(): safe mode
        self._released = False     # the lock is open (relay at its unlock level)
        self._until = None         # ticks when a pulse ends
        self._opened = False       # the door opened during this pulse
        self._ajar_at = None       # ticks of a relock while the sensor read open (the door still moving)
        self._open_at = None       # ticks the door was last seen opening (the held-open clock)
        self._held_raised = False
        self._alarms = []
        self._sched_at = None
        self._folder = folder
        self._announce = None      # the mode a restart restored, journaled by the first poll
        thing.prop(self.p_lock, "locked")
        thing.prop(self.p_door, "unknown")
        thing.prop(self.p_mode, NORMAL)
        thing.prop(self.p_alarms, [])
        # The default pulse; the cloud tunes it per door (slow strikes, wheelchairs).
        thing.prop(self.p_unlock_ms, cfg["unlock_ms"], setter=self.set_unlock_ms)
        if folder is not None:
            self._restore()

    # -- what others ask of the door ------------------------------------------
    def mode(self):
        if self._held:
            return NORMAL_OPEN if self.cfg["fail"] == "safe" else LOCKED
        if self.commanded == NORMAL and self._sched_open:
            return NORMAL_OPEN
        return self.commanded

    def refusal(self):
        """Why no grant opens the door now (an access_denied reason), or None."""
        if self._held:
            return "safe_mode"
        if self.commanded == LOCKED:
            return "door_locked_down"
        return None

    async def grant(self, source, user=None, credential=None, duration_ms=None, reason=None):
        """The one unlock path for the cloud, cards, PINs and fingerprints:
        journaled first (a door opening nobody can account for is worse
        than a door that stays shut), then the relay. -> the pulse in ms;
        CommandError when refused."""
        why = self.refusal()
        if why is not None:
            raise CommandError("door %s does not open: %s" % (self.name, why))
        ms = self.thing.get(self.p_unlock_ms) if duration_ms is None else duration_ms
        payload = {r.DOOR: self.name, r.SOURCE: source, r.DURATION_MS: ms}
        if user is not None:
            payload[r.USER] = user
        if credential is not None:
            payload[r.CREDENTIAL] = credential
        if reason is not None:
            payload[r.REASON] = reason
        if not self.thing.emit(r.UNLOCKED, payload):
            log.count("unlocks_not_journaled")
            raise CommandError("the unlock could not be journaled, so the door stays locked")
        self._pulse(ms)
        log.info("door", "%s unlocked for %d ms (%s)" % (self.name, ms, source))
        return ms

    def rex(self):
        """The exit button: the relay first - egress never waits for the
        journal or the network - then the events, best effort. Opens in
        lockdown too: nobody is ever trapped inside."""
        was = self._released
        ms = self.thing.get(self.p_unlock_ms)
        self._pulse(ms)
        self._event(r.REX, {r.DOOR: self.name})
        if not was:
            self._event(r.UNLOCKED, {r.DOOR: self.name, r.SOURCE: "rex", r.DURATION_MS: ms})

    def lock(self, reason="cloud"):
        """End a pulse now. A door held open by its mode stays open (door_mode
        changes that): -> False then."""
        if self.mode() == NORMAL_OPEN:
            return False
        self._until = None
        self._lock(reason)
        return True

    async def set_mode(self, mode, by="cloud"):
        """normal, normal_open (held unlocked) or locked (lockdown). Holding
        a door open is an unlock: not journaled, not done (CommandError)."""
        was = self.commanded
        self.commanded = mode
        if not self._apply_mode(by):
            self.commanded = was
            raise CommandError("the mode change could not be journaled, so door %s stays %s"
                               % (self.name, self.mode()))
        self._save()   # also when unchanged: a write that failed before is tried again
        return self.mode()

    def clear_alarms(self, by="cloud"):
        """Acknowledge the alarms; a tamper switch still open stays an alarm.
        -> the alarms still active."""
        keep = []
        for alarm in self._alarms:
            if alarm == TAMPER and self._tampered():
                keep.append(alarm)
            else:
                self._event(r.ALARM_CLEARED, {r.DOOR: self.name, r.ALARM: alarm, r.BY: by})
        self._set_alarms(keep)
        return keep

    def hold_fail_state(self):
        """Safe mode: the lock goes to the board's fail state (secure:
        locked, safe: released) and no grant opens it; the exit button
        still does."""
        self._held = True
        self._until = None
        if self.cfg["fail"] == "safe":
            # Released whether or not the journal takes it: that is what
            # fail safe means, and the record is best effort here.
            self._drive(True)
            self._event(r.UNLOCKED, {r.DOOR: self.name, r.SOURCE: "fail_safe", r.REASON: "safe_mode"})
        else:
            self._lock("safe_mode")
        mode = self.mode()
        if mode != self.thing.get(self.p_mode):
            self.thing.update(self.p_mode, mode)
            self._event(r.DOOR_MODE, {r.DOOR: self.name, r.MODE: mode, r.BY: "safe_mode"})

    async def set_unlock_ms(self, ms):
        if not isinstance(ms, int) or isinstance(ms, bool) or not MIN_UNLOCK_MS <= ms <= MAX_UNLOCK_MS:
            raise CommandError("unlock_ms must be an integer from %d to %d" % (MIN_UNLOCK_MS, MAX_UNLOCK_MS))
        self.thing.update(self.p_unlock_ms, ms)
        self._save()

    def set_held_open_s(self, s):
        if not isinstance(s, int) or isinstance(s, bool) or not 1 <= s <= MAX_HELD_OPEN_S:
            raise CommandError("held_open_s must be an integer from 1 to %d" % MAX_HELD_OPEN_S)
        self.cfg["held_open_s"] = s
        self._save()

    # -- the loop ---------------------------------------------------------------
    async def run(self):
        """Watch the inputs and the clocks (a supervised task). A poll that
        fails (a MemoryError in a journal listener) costs that poll, not the
        door: a task restart would leave the exit button unwatched and a
        pulse running for as long as the supervisor's backoff."""
        while True:
            now = ticks_ms()
            try:
                self.poll(now)
            except Exception as e:  # noqa: BLE001 - whatever failed, the next poll must come
                self._poll_failed(now, e)
            await asyncio.sleep(POLL_MS / 1000)

    def _poll_failed(self, now, e):
        log.count("door_poll_errors")
        n = log.counters["door_poll_errors"]
        if not n & (n - 1):   # 1st, 2nd, 4th...: a fault that repeats every poll cannot flood the log
            log.error("door", "%s: poll failed (%d so far): %s %s" % (self.name, n, e.__class__.__name__, e))
        # The pulse still ends on time, whatever the failure skipped.
        if self._until is not None and ticks_diff(now, self._until) >= 0 and self.mode() != NORMAL_OPEN:
            self._until = None
            try:
                self._lock("timeout", now)
            except Exception:  # noqa: BLE001, S110 - the relay moved first; telling of it failed again
                pass

    def poll(self, now):
        if self._announce is not None:
            self._announce_restored()
        rex = self.rex_in
        if rex is not None:
            # The latch first: a press that comes between it and the level
            # is seen by the level now, and not a second time next poll.
            short = rex.pin.latched()
            before = rex.level
            if rex.changed(now):
                if rex.level == rex.lead and rex.was is not None:
                    self.rex()
            elif short and before is not None and before != rex.lead:
                # Pressed and let go between two polls (the loop was busy):
                # late, but it opens. Only from a released button, so the
                # bounce of a release is no second press.
                log.count("rex_latched")
                self.rex()
        sensor = self.sensor
        # The sensor before the pulse's end: a door that began to open in
        # time is not forced because the relock came in the same poll.
        if sensor is not None and sensor.changed(now):
            self._door_moved(sensor)
        if self._ajar_at is not None and ticks_diff(now, self._ajar_at) > self._ajar_ms():
            self._ajar_at = None   # a glitch at the relock, not a door on its way open
        if self._until is not None and ticks_diff(now, self._until) >= 0:
            self._until = None
            if self.mode() != NORMAL_OPEN:
                self._lock("timeout", now)
        if sensor is not None:
            self._check_held_open(now)
        tamper = self.tamper_in
        if tamper is not None and tamper.changed(now) and (tamper.was is not None or self._tampered()):
            active = self._tampered()
            if active and TAMPER not in self._alarms:
                self._set_alarms(self._alarms + [TAMPER])
            self._event(r.DOOR_TAMPER, {r.DOOR: self.name, r.ACTIVE: active})
        if self.cfg["normal_open"] and not self._held and (
                self._sched_at is None or ticks_diff(now, self._sched_at) >= SCHEDULE_EVERY_MS):
            self._sched_at = now
            self.check_schedule(clock.now())

    # -- inside -------------------------------------------------------------------
    def _drive(self, released):
        # Energise when that is what the wanted lock state needs.
        if released == self.cfg["unlock_energised"]:
            self.relay.on()
        else:
            self.relay.off()
        self._released = released
        self.thing.update(self.p_lock, "unlocked" if released else "locked")

    def _pulse(self, ms):
        if not self._released:
            self._drive(True)
        self._until = ticks_add(ticks_ms(), ms)
        self._opened = False

    def _lock(self, reason, now=None):
        was = self._released
        self._drive(False)
        if was:
            # Still moving (the debounced level lags the pin): the opening
            # began while the lock was open.
            sensor = self.sensor
            ajar = sensor is not None and sensor.raw == self._open_level()
            self._ajar_at = (ticks_ms() if now is None else now) if ajar else None
            self._event(r.LOCKED, {r.DOOR: self.name, r.REASON: reason})
            log.info("door", "%s locked (%s)" % (self.name, reason))

    def _event(self, name, payload):
        # A state change that already happened: reported best effort.
        if not self.thing.emit(name, payload):
            log.count("door_events_not_journaled")

    def _set_alarms(self, alarms):
        alarms.sort()
        kept = self._kept(self._alarms) != self._kept(alarms)
        self._alarms = alarms
        self.thing.update(self.p_alarms, alarms)
        if kept:
            self._save()

    @staticmethod
    def _kept(alarms):
        # What outlives a restart: held_open ends with the door closing.
        return [a for a in alarms if a != HELD_OPEN]

    def _ajar_ms(self):
        # How late after a relock a door still moving at it is confirmed open.
        return self.cfg["debounce_ms"] + POLL_MS

    def _restore(self):
        from agent.peripherals import door_state
        try:
            state = door_state.load(self._folder, self.name, STATE_RULES)
        except ValueError as e:
            # Not what we wrote (a flash fault; a power cut leaves the old
            # file or the new). Normal, not locked: a lockdown is rare and
            # the cloud can set it again, while a lockdown nobody asked for
            # shuts out every card holder for as long as the cloud is away.
            # Either way the first poll tells the cloud the door is normal.
            log.count("door_state_bad")
            log.warn("door", "%s: kept state ignored (%s): the door starts normal" % (self.name, e))
            self._announce = NORMAL
            return
        if state is None:
            return
        self.commanded = state["mode"]
        if state["alarms"]:
            self._alarms = sorted(state["alarms"])
            self.thing.update(self.p_alarms, self._alarms)
        self.thing.update(self.p_unlock_ms, state["unlock_ms"])
        self.cfg["held_open_s"] = state["held_open_s"]
        if self.commanded != NORMAL:
            self._announce = self.commanded

    def _announce_restored(self):
        # The restored mode is in force from the start (refusal()); the
        # first poll, with the journal there, makes it a journaled fact:
        # the relay of a door held open moves only once that is journaled.
        mode, self._announce = self._announce, None
        if self._held:
            return   # safe mode: hold_fail_state() said what holds the door
        if mode == NORMAL:
            self._event(r.DOOR_MODE, {r.DOOR: self.name, r.MODE: NORMAL, r.BY: "restart"})
        elif not self._apply_mode("restart"):
            self.commanded = NORMAL
            log.count("door_mode_not_journaled")
            log.warn("door", "%s: restored mode %s not journaled: the door stays normal" % (self.name, mode))

    def _save(self):
        if self._folder is None:
            return
        from agent.peripherals import door_state
        try:
            door_state.save(self._folder, self.name, self.commanded, self._kept(self._alarms),
                            self.thing.get(self.p_unlock_ms), self.cfg["held_open_s"])
        except OSError as e:
            # The change holds until a restart: counted, and the door works on.
            log.count("door_state_errors")
            log.warn("door", "%s: state not kept on flash: %s" % (self.name, e))

    def _tampered(self):
        return self.tamper_in.level == self.cfg["tamper_level"]

    def _open_level(self):
        return 1 if self.cfg["sensor"] == "nc" else 0

    def _door_moved(self, sensor):
        is_open = sensor.level == self._open_level()
        # Honoured only for an opening that began by the time the relock's
        # own reading could be confirmed: a glitch at the relock must not
        # hide the next forced opening, however much later.
        ajar = self._ajar_at is not None and ticks_diff(sensor.since, self._ajar_at) <= self._ajar_ms()
        self._ajar_at = None
        self.thing.update(self.p_door, "open" if is_open else "closed")
        if is_open:
            self._open_at = sensor.since
            self._held_raised = False
            if sensor.was is None:
                # Found open at start: reported, but nobody is known to have forced it.
                self._event(r.DOOR_OPENED, {r.DOOR: self.name})
                return
            self._opened = self._released
            self._event(r.DOOR_OPENED, {r.DOOR: self.name})
            if not (self._released or ajar):
                if FORCED not in self._alarms:
                    self._set_alarms(self._alarms + [FORCED])
                self._event(r.DOOR_FORCED, {r.DOOR: self.name})
            return
        self._open_at = None
        if sensor.was is None:
            return
        self._event(r.DOOR_CLOSED, {r.DOOR: self.name})
        if HELD_OPEN in self._alarms:
            self._set_alarms([a for a in self._alarms if a != HELD_OPEN])
            self._event(r.ALARM_CLEARED, {r.DOOR: self.name, r.ALARM: HELD_OPEN, r.BY: "door closed"})
        if self._opened and self._until is not None and self.cfg["relock_on_close"] and self.mode() == NORMAL:
            # Opened and closed again: the person is through; a strike left
            # unlocked behind them would let the next one in.
            self._until = None
            self._lock("door closed")

    def _check_held_open(self, now):
        if self._open_at is None or self._held_raised:
            return
        if self.mode() == NORMAL_OPEN:
            self._open_at = now   # held open on purpose: the clock starts when that ends
            return
        open_ms = ticks_diff(now, self._open_at)
        if open_ms >= self.cfg["held_open_s"] * 1000:
            self._held_raised = True
            if HELD_OPEN not in self._alarms:
                self._set_alarms(self._alarms + [HELD_OPEN])
            self._event(r.DOOR_HELD_OPEN, {r.DOOR: self.name, r.OPEN_S: open_ms // 1000})

    def check_schedule(self, epoch):
        from agent.records import plausible_time
        from agent.schedule import in_schedule
        # A clock nobody set (a board just powered up, no cloud yet) says
        # 1970 or 2000: it holds no door open.
        now_open = plausible_time(epoch) and in_schedule(self.cfg["normal_open"], epoch, self.gmt)
        if now_open != self._sched_open:
            self._sched_open = now_open
            if not self._apply_mode("schedule"):
                self._sched_open = False   # tried again at the next check
                log.count("door_mode_not_journaled")

    def _apply_mode(self, by):
        """Bring the lock and the mode property in line with mode(); False
        when holding the door open could not be journaled (nothing changed)."""
        mode = self.mode()
        if mode == NORMAL_OPEN and not self._released:
            if not self.thing.emit(r.UNLOCKED, {r.DOOR: self.name, r.SOURCE: by, r.REASON: NORMAL_OPEN}):
                log.count("unlocks_not_journaled")
                return False
            self._drive(True)
        if mode != self.thing.get(self.p_mode):
            self.thing.update(self.p_mode, mode)
            self._event(r.DOOR_MODE, {r.DOOR: self.name, r.MODE: mode, r.BY: by})
        if mode == LOCKED or (mode == NORMAL and self._released and self._until is None):
            self._until = None
            self._lock("mode" if by != "schedule" else "schedule")
        return True
