# The door controller's behaviour as one table of scenarios (issue 9,
# "Done means"), run against every hal by a "world" of its own:
#   tests/mp/test_door_scenarios_esp32.py   ESP32 stand-ins under MicroPython
#   tests/host/test_door_scenarios_pi.py    gpiozero's MockFactory, CPython
#   tests/e2e/test_door_scenarios.py        the virtual board end to end,
#                                           the agent on both runtimes
# Runs on both runtimes (MicroPython imports it from tests/): no typing, no
# f-strings, nothing CPython-only.
#
# A world holds one board (board_spec(), its hal's pins, the users of
# USERS) and offers, with door/reader names from board_spec():
#   door_open(is_open, door), rex(pressed, door)   the outside world, now
#   wire_card(number, nbits), wire_key(key)        a reader's bits ("0101...")
#   await wiegand(reader, bits)                    one frame on D0/D1, sent
#                                                  once the previous one ended
#   unlocked(door) -> bool or None                 from the relay pin's level
#   levels(door) -> [pin levels driven, in order]
#   await call(command, payload) -> (ok, result or error text)
#   await events() -> [(name, payload)] every door event so far, in order
#   await prop(name), await counter(name)
#   await quiet()       what happened so far has reached events()
#   await cloud(up)     the cloud goes away / comes back (in-process: none)
#   and, in-process only, hold_fail_state() (what safe mode does to doors).
# Waits are bounded in count: a broken door fails a scenario, never hangs it.
import asyncio

FRONT, GATE, HALL = "front", "gate", "hall"
READER, KEYPAD = "front-reader", "gate-reader"
PULSE_MS = 400          # front's pulse: every grant below relocks before the next
PIN_LOCKOUT_S = 2      # long enough for a slow (loaded) agent to see the fourth PIN inside it
JAN_2020, JAN_2021 = 1577836800, 1609459200
ALWAYS = [[127, 0, 1440]]


def board_spec(hal, chip, runtimes):
    """The board every world builds. GPIOs an ESP32 and a Pi both have, no
    strapping pin for a relay. front: a strike with sensor, exit button,
    tamper, held-open after 1 s and anti-passback; gate: a maglock
    (energised while locked) on an active-low relay, fail safe, behind a
    card+PIN keypad; hall: held open by its normal-open hours, always."""
    spec = {
        "name": "door-scenarios", "chip": chip, "runtimes": runtimes, "hal": hal,
        "journal": {"path": "journal"},
        "access": {"pin_lockout_s": PIN_LOCKOUT_S},
        "peripherals": [
            {"type": "door", "name": FRONT, "relay_pin": 26, "sensor_pin": 27, "sensor": "nc", "rex_pin": 25,
             "tamper_pin": 13, "unlock_ms": PULSE_MS, "held_open_s": 1, "anti_passback_s": 60},
            {"type": "door", "name": GATE, "relay_pin": 19, "relay_active_high": False, "unlock_energised": False,
             "fail": "safe", "unlock_ms": PULSE_MS},
            {"type": "door", "name": HALL, "relay_pin": 21, "normal_open": ALWAYS},
            {"type": "wiegand", "name": READER, "d0_pin": 22, "d1_pin": 23, "door": FRONT, "mode": "card_or_pin",
             "frame_gap_ms": 25},
            {"type": "wiegand", "name": KEYPAD, "d0_pin": 16, "d1_pin": 17, "door": GATE, "mode": "card_pin",
             "frame_gap_ms": 25},
        ],
    }
    if "micropython" in runtimes:
        spec["heap_kb"] = 384   # the ESP32 door board's budget (boards/esp32-devkitc-door.json)
    return spec


# Cards of several sizes: (number, bits).
ANN, BOB, CAT, DEE, EVE, FAY = (1001, 26), (1002, 34), (1003, 26), (1004, 37), (1005, 26), (1006, 37)
NOBODY = (1999, 26)
FAY_PIN, GUS_PIN, WRONG_PIN = "2468", "1357", "9999"
USERS = [
    {"id": "ann", "name": "Ann", "cards": [ANN[0]]},
    {"id": "bob", "name": "Bob", "cards": [BOB[0]]},
    {"id": "cat", "name": "Cat", "cards": [CAT[0]], "enabled": False},
    {"id": "dee", "name": "Dee", "cards": [DEE[0]], "from": JAN_2020, "until": JAN_2021},
    {"id": "eve", "name": "Eve", "cards": [EVE[0]], "schedule": []},
    {"id": "fay", "name": "Fay", "cards": [FAY[0]], "pin": FAY_PIN},
    {"id": "gus", "name": "Gus", "pin": GUS_PIN},
]
# Every frame a scenario sends, for a world that cannot encode them itself
# (MicroPython: the host encodes them, host_tools/emulator.py).
CARDS = (ANN, BOB, CAT, DEE, EVE, FAY, NOBODY)
KEYS = "0123456789*#"


def flip(bits, i):
    """The frame with its bit i (0 = first on the wire) flipped."""
    return bits[:i] + ("1" if bits[i] == "0" else "0") + bits[i + 1:]


async def until(cond, what, timeout_ms=5000):
    """Wait (bounded) until cond() - sync or async - is truthy; -> its value."""
    for _ in range(timeout_ms // 20):
        got = cond()
        if hasattr(got, "send"):
            got = await got
        if got:
            return got
        await asyncio.sleep(0.02)
    raise AssertionError("not within %d ms: %s" % (timeout_ms, what))


async def card(w, reader, number_bits):
    await w.wiegand(reader, w.wire_card(number_bits[0], number_bits[1]))


async def keys(w, reader, text):
    for k in text:
        await w.wiegand(reader, w.wire_key(k))


async def settled(w):
    """The board at rest: every door's pulse over, front closed and read.
    -> how many events there were (a mark for after())."""
    await until(lambda: w.unlocked(FRONT) is False and w.unlocked(GATE) is False, "front and gate locked")
    await until(_closed(w), "front seen closed")
    await w.quiet()
    return len(await w.events())


def _closed(w):
    async def check():
        return await w.prop(FRONT + ".door") == "closed"
    return check


async def after(w, mark, names, door=None):
    """The events since `mark` (of `door` only, if given) once `names` have
    all come, in that order, with nothing else in between -> their payloads."""
    async def got():
        evs = [(n, p) for n, p in (await w.events())[mark:] if door is None or p.get("door") == door]
        return evs if len(evs) >= len(names) else None
    evs = await until(got, "events %s%s" % (names, "" if door is None else " at " + door))
    assert [n for n, _ in evs] == list(names), (names, evs)
    return [p for _, p in evs]


async def ok(w, command, payload):
    good, result = await w.call(command, payload)
    assert good, (command, payload, result)
    return result


async def unlocks_then_relocks(w, door):
    await until(lambda: w.unlocked(door), door + " unlocked")
    await until(lambda: w.unlocked(door) is False, door + " relocked")


# -- the scenarios --------------------------------------------------------------
async def cloud_unlock(w):
    mark = await settled(w)
    assert await ok(w, "unlock", {"door": FRONT, "duration_ms": 300}) == {"lock": "unlocked", "duration_ms": 300}
    await unlocks_then_relocks(w, FRONT)
    unlocked, locked = await after(w, mark, ["unlocked", "locked"])
    assert unlocked == {"door": FRONT, "source": "cloud", "duration_ms": 300}, unlocked
    assert locked == {"door": FRONT, "reason": "timeout"}, locked


async def rex_with_the_cloud_down(w):
    mark = await settled(w)
    await w.cloud(False)
    w.rex(True, FRONT)
    await until(lambda: w.unlocked(FRONT), "the exit button opened the door")
    w.rex(False, FRONT)
    await until(lambda: w.unlocked(FRONT) is False, "relocked after the exit button")
    await w.cloud(True)
    rex, unlocked, locked = await after(w, mark, ["rex", "unlocked", "locked"])
    assert unlocked == {"door": FRONT, "source": "rex", "duration_ms": PULSE_MS}, unlocked
    assert locked["reason"] == "timeout"


async def forced_open(w):
    mark = await settled(w)
    before = len(w.levels(FRONT))
    w.door_open(True, FRONT)
    await until(_alarms(w, ["forced"]), "the forced alarm")
    w.door_open(False, FRONT)
    await after(w, mark, ["door_opened", "door_forced", "door_closed"])
    assert await ok(w, "clear_alarm", {"door": FRONT}) == {"alarms": []}
    cleared = (await after(w, mark, ["door_opened", "door_forced", "door_closed", "alarm_cleared"]))[-1]
    assert cleared == {"door": FRONT, "alarm": "forced", "by": "cloud"}, cleared
    assert len(w.levels(FRONT)) == before, "the relay moved"


def _alarms(w, want):
    async def check():
        return await w.prop(FRONT + ".alarms") == want
    return check


async def held_open(w):
    mark = await settled(w)
    await ok(w, "unlock", {"door": FRONT, "duration_ms": 5000})
    await until(lambda: w.unlocked(FRONT), "unlocked")
    w.door_open(True, FRONT)
    held = (await after(w, mark, ["unlocked", "door_opened", "door_held_open"]))[-1]
    assert held["door"] == FRONT and held["open_s"] >= 1, held
    assert await w.prop(FRONT + ".alarms") == ["held_open"]
    w.door_open(False, FRONT)
    got = await after(w, mark, ["unlocked", "door_opened", "door_held_open", "door_closed", "alarm_cleared",
                                "locked"])
    assert got[4] == {"door": FRONT, "alarm": "held_open", "by": "door closed"}, got
    await until(_alarms(w, []), "held_open cleared by the door closing")


async def relock_on_close(w):
    mark = await settled(w)
    await ok(w, "unlock", {"door": FRONT, "duration_ms": 30000})
    await until(lambda: w.unlocked(FRONT), "unlocked")
    w.door_open(True, FRONT)
    await after(w, mark, ["unlocked", "door_opened"])
    w.door_open(False, FRONT)
    # Long before the 30 s pulse ends: the person is through.
    await until(lambda: w.unlocked(FRONT) is False, "relocked once closed")
    locked = (await after(w, mark, ["unlocked", "door_opened", "door_closed", "locked"]))[-1]
    assert locked == {"door": FRONT, "reason": "door closed"}, locked


async def normal_open_schedule(w):
    await until(_mode(w, HALL, "normal_open"), "hall held open by its hours")
    await until(lambda: w.unlocked(HALL), "hall's relay at its unlock level")
    held = [p for n, p in await w.events() if n == "unlocked" and p["door"] == HALL]
    assert held[0] == {"door": HALL, "source": "schedule", "reason": "normal_open"}, held
    good, why = await w.call("lock", {"door": HALL})
    assert not good, "a door held open by its hours was locked by a lock command"
    # The mode the cloud sets wins over the hours; back to normal, they hold it open again.
    mark = len(await w.events())
    assert await ok(w, "door_mode", {"door": HALL, "mode": "locked"}) == {"mode": "locked"}
    await until(lambda: w.unlocked(HALL) is False, "hall locked down")
    assert await ok(w, "door_mode", {"door": HALL, "mode": "normal"}) == {"mode": "normal_open"}
    await until(lambda: w.unlocked(HALL), "hall held open again")
    down, locked, held, back = await after(w, mark, ["door_mode", "locked", "unlocked", "door_mode"], door=HALL)
    assert (down["mode"], locked["reason"], back["mode"]) == ("locked", "mode", "normal_open"), (down, locked, back)
    assert held == {"door": HALL, "source": "cloud", "reason": "normal_open"}, held


def _mode(w, door, want):
    async def check():
        return await w.prop(door + ".mode") == want
    return check


async def fail_safe_polarity(w):
    # gate: a maglock (released without power) on an active-low relay.
    # Locked = energised = pin 0, from the claim on; released = pin 1.
    mark = await settled(w)
    claimed = _changes(w.levels(GATE))
    assert claimed == [0], claimed
    await ok(w, "unlock", {"door": GATE, "duration_ms": 300})
    await unlocks_then_relocks(w, GATE)
    assert _changes(w.levels(GATE)) == [0, 1, 0], w.levels(GATE)
    await after(w, mark, ["unlocked", "locked"], door=GATE)


def _changes(levels):
    out = []
    for v in levels:
        if not out or out[-1] != v:
            out.append(v)
    return out


async def safe_mode_fail_states(w):
    # What safe mode does to the doors (agent/device.py): front (fail
    # secure) stays locked, gate (fail safe) is released - its pin goes to
    # 1, de-energised - and no grant opens a door; the exit button does.
    await settled(w)
    w.hold_fail_state()
    assert w.unlocked(FRONT) is False and w.unlocked(GATE) is True
    assert _changes(w.levels(GATE))[-1] == 1
    good, why = await w.call("unlock", {"door": FRONT})
    assert not good and "safe_mode" in why, why
    w.rex(True, FRONT)
    await until(lambda: w.unlocked(FRONT), "the exit button opened the door in safe mode")
    w.rex(False, FRONT)
    await until(lambda: w.unlocked(FRONT) is False, "relocked")


async def card_granted(w):
    mark = await settled(w)
    await card(w, READER, ANN)
    await unlocks_then_relocks(w, FRONT)
    unlocked, _ = await after(w, mark, ["unlocked", "locked"])
    assert unlocked == {"door": FRONT, "source": "card", "user": "ann", "credential": str(ANN[0]),
                        "duration_ms": PULSE_MS}, unlocked


# (card, user, reason): denied, and the relay never moves.
DENIED = ((NOBODY, None, "unknown_card"), (CAT, "cat", "disabled"), (DEE, "dee", "expired"),
          (EVE, "eve", "outside_schedule"))


async def cards_denied(w):
    mark = await settled(w)
    before = len(w.levels(FRONT))
    for c, _, _ in DENIED:
        await card(w, READER, c)
    got = await after(w, mark, ["access_denied"] * len(DENIED))
    for i in range(len(DENIED)):
        c, user, reason = DENIED[i]
        payload = got[i]
        want = {"door": FRONT, "source": "card", "credential": str(c[0]), "reason": reason}
        if user is not None:
            want["user"] = user
        assert payload == want, (want, payload)
    assert len(w.levels(FRONT)) == before, "a denied card moved the relay"


async def card_and_pin(w):
    mark = await settled(w)
    await card(w, KEYPAD, FAY)
    await keys(w, KEYPAD, FAY_PIN + "#")
    await unlocks_then_relocks(w, GATE)
    await card(w, KEYPAD, FAY)
    await keys(w, KEYPAD, WRONG_PIN + "#")
    unlocked, _, denied = await after(w, mark, ["unlocked", "locked", "access_denied"], door=GATE)
    assert (unlocked["source"], unlocked["user"], unlocked["credential"]) == ("card_pin", "fay", str(FAY[0]))
    assert denied == {"door": GATE, "source": "card_pin", "credential": str(FAY[0]), "user": "fay",
                      "reason": "wrong_pin"}, denied
    for _, payload in await w.events():
        assert FAY_PIN not in repr(payload) and WRONG_PIN not in repr(payload), "a PIN in an event"


async def pin_wrong_three_times(w):
    mark = await settled(w)
    lockouts = await w.counter("pin_lockouts")
    for _ in range(3):
        await keys(w, READER, WRONG_PIN + "#")
    await keys(w, READER, GUS_PIN + "#")      # the right PIN, too late
    got = await after(w, mark, ["access_denied"] * 4)
    assert [p["reason"] for p in got] == ["unknown_pin"] * 3 + ["pin_locked_out"], got
    assert await w.counter("pin_lockouts") == lockouts + 1
    assert w.unlocked(FRONT) is False
    await asyncio.sleep(PIN_LOCKOUT_S + 0.2)   # the lockout's end: PINs count again
    await keys(w, READER, GUS_PIN + "#")
    await unlocks_then_relocks(w, FRONT)
    unlocked = (await after(w, mark, ["access_denied"] * 4 + ["unlocked", "locked"]))[4]
    assert (unlocked["source"], unlocked["user"]) == ("pin", "gus"), unlocked
    assert "credential" not in unlocked


async def bad_parity_and_noise(w):
    mark = await settled(w)
    bad, noise = await w.counter("wiegand_bad_parity"), await w.counter("wiegand_noise")
    before = len(w.levels(FRONT))
    good = w.wire_card(ANN[0], ANN[1])
    await w.wiegand(READER, flip(good, 5))      # one data bit lost on the way
    await w.wiegand(READER, flip(good, 0))      # the parity bit itself
    await w.wiegand(READER, good[:25])          # a bit short: an odd count (a missing ground)
    await w.wiegand(READER, "1" * 64 + "0" * 9)  # a burst over 64 bits
    await card(w, READER, NOBODY)               # and the reader goes on deciding
    denied = (await after(w, mark, ["access_denied"]))[0]
    assert denied["credential"] == str(NOBODY[0]), denied
    assert await w.counter("wiegand_bad_parity") == bad + 2
    assert await w.counter("wiegand_noise") == noise + 2
    assert len(w.levels(FRONT)) == before


async def anti_passback(w):
    mark = await settled(w)
    await card(w, READER, BOB)
    await unlocks_then_relocks(w, FRONT)
    await card(w, READER, BOB)                  # the same card again, within the door's 60 s
    got = await after(w, mark, ["unlocked", "locked", "access_denied"])
    assert got[0]["user"] == "bob" and got[2]["reason"] == "anti_passback" and got[2]["user"] == "bob", got
    assert w.unlocked(FRONT) is False


async def add_users(w):
    assert (await ok(w, "user_set", {"users": USERS}))["stored"] == len(USERS)


# In the order a world with one board runs them (each leaves it at rest);
# safe mode last: it is for good.
SCENARIOS = (
    ("cloud_unlock", cloud_unlock),
    ("rex_with_the_cloud_down", rex_with_the_cloud_down),
    ("forced_open", forced_open),
    ("held_open", held_open),
    ("relock_on_close", relock_on_close),
    ("normal_open_schedule", normal_open_schedule),
    ("fail_safe_polarity", fail_safe_polarity),
    ("card_granted", card_granted),
    ("cards_denied", cards_denied),
    ("card_and_pin", card_and_pin),
    ("pin_wrong_three_times", pin_wrong_three_times),
    ("bad_parity_and_noise", bad_parity_and_noise),
    ("anti_passback", anti_passback),
    ("safe_mode_fail_states", safe_mode_fail_states),
)
NAMES = [n for n, _ in SCENARIOS]


def door_inputs(cfg, is_open=None, rex=None, tamper=None):
    """[(pin, level)] of a door's dry contacts (pull-ups, as
    docs/door-controller.md wires them): NC reads 1 when open, NO 0; a
    pressed exit button and an active tamper switch read their levels."""
    out = []
    if is_open is not None and cfg["sensor_pin"] is not None and cfg["sensor"] != "none":
        out.append((cfg["sensor_pin"], 1 if is_open == (cfg["sensor"] == "nc") else 0))
    if rex is not None and cfg["rex_pin"] is not None:
        out.append((cfg["rex_pin"], cfg["rex_level"] if rex else 1 - cfg["rex_level"]))
    if tamper is not None and cfg["tamper_pin"] is not None:
        out.append((cfg["tamper_pin"], cfg["tamper_level"] if tamper else 1 - cfg["tamper_level"]))
    return out


class InProcessWorld:
    """The board built in this process as agent/device.py builds it - the
    doors, the access controller over its user store on flash (beside the
    board file), the readers - on a hal adapter, each part's supervised
    loop a task. A subclass is the outside world of that hal's pins:
    _set(pin, level), _bits(d0, d1, bits), _levels(pin) (every level the
    pin was driven to, the last one its level now), wire_card(), wire_key()."""

    def __init__(self, io, board_path):
        from agent import config
        from agent.access.controller import make
        from agent.peripherals.door import Door
        from agent.peripherals.doors import Doors
        from agent.peripherals.reader import Reader
        from agent.thing import Thing
        board = config.load_board(board_path)
        self.thing = Thing("door-scenarios")
        self.seen = []
        self.thing.listen(self._heard)
        self.doors = Doors(self.thing)
        self.cfg = {}
        self.readers = {}
        parts = []
        for cfg in board["peripherals"]:
            if cfg["type"] == "door":
                door = Door(self.thing, io, cfg)
                self.doors.add(door)
                self.cfg[cfg["name"]] = cfg
                parts.append(door)
        access = make(self.thing, board, {"gmt": 0, "max_frame": 16384, "device_id": "door-scenarios"},
                      self.doors)
        for cfg in board["peripherals"]:
            if cfg["type"] == "wiegand":
                self.readers[cfg["name"]] = cfg
                parts.append(Reader(access, io, cfg))
        self.parts = parts
        self.tasks = []

    def _heard(self, kind, name, value):
        from agent.records import DOOR_EVENTS
        if kind == "event" and name in DOOR_EVENTS:
            self.seen.append((name, value))
        return True

    def start(self):
        """Every door closed, its button released, its tamper switch quiet;
        then the loops."""
        for cfg in self.cfg.values():
            for pin, level in door_inputs(cfg, is_open=False, rex=False, tamper=False):
                self._set(pin, level)
        self.tasks = [asyncio.create_task(p.run()) for p in self.parts]

    async def stop(self):
        for t in self.tasks:
            t.cancel()
        await asyncio.sleep(0)

    def door_open(self, is_open, door):
        for pin, level in door_inputs(self.cfg[door], is_open=is_open):
            self._set(pin, level)

    def rex(self, pressed, door):
        for pin, level in door_inputs(self.cfg[door], rex=pressed):
            self._set(pin, level)

    # The module whose ticks_ms() the hal's edge handlers stamp bits with
    # (a subclass sets it): see wiegand().
    clock = None

    async def wiegand(self, reader, bits):
        cfg = self.readers[reader]
        # A reader puts a frame's bits on the wire within milliseconds. On a
        # loaded machine this process can be descheduled between two drives
        # for longer than the frame gap (25 ms here), and the port would
        # rightly end the frame there: the bits of one frame are driven at
        # one instant of the port's clock (the edge handlers run inside the
        # drives, on this thread, while it holds).
        clock = self.clock
        if clock is not None:
            now = clock.ticks_ms()
            ticks_ms = clock.ticks_ms
            clock.ticks_ms = lambda: now
        try:
            self._bits(cfg["d0_pin"], cfg["d1_pin"], bits)
        finally:
            if clock is not None:
                clock.ticks_ms = ticks_ms
        await asyncio.sleep(2 * cfg["frame_gap_ms"] / 1000)   # the frame ends before the next one starts

    def unlocked(self, door):
        cfg = self.cfg[door]
        levels = self._levels(cfg["relay_pin"])
        if not levels:
            return None
        level = levels[-1]
        return (level == (1 if cfg["relay_active_high"] else 0)) == cfg["unlock_energised"]

    def levels(self, door):
        return self._levels(self.cfg[door]["relay_pin"])

    async def call(self, command, payload):
        from agent.errors import CommandError
        try:
            return True, await self.thing.call(command, payload)
        except CommandError as e:
            return False, str(e)

    async def events(self):
        return self.seen

    async def prop(self, name):
        return self.thing.get(name)

    async def counter(self, name):
        from agent import log
        return log.counters.get(name, 0)

    async def quiet(self):
        pass

    async def cloud(self, up):
        pass   # no cloud here: nothing the doors do needs one

    def hold_fail_state(self):
        for door in self.doors.doors:
            door.hold_fail_state()


async def run(w, names=None):
    """Run the scenarios (all, or those named) on the world's one board, in
    table order; a failure names its scenario."""
    await add_users(w)
    for name, scenario in SCENARIOS:
        if names is not None and name not in names:
            continue
        try:
            await scenario(w)
        except Exception as e:   # re-raised, with the scenario named
            raise AssertionError("scenario %s: %s: %s" % (name, type(e).__name__, e)) from e
