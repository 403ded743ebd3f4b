# A door's pins for unit tests on both runtimes: a stand-in for the hal's
# I/O adapter that keeps the adapter's rules (docs/door-controller.md
# section 1) - a pin is claimed once, an output at the level asked for, a
# pull is "up", "down" or None - and records every level an output pin
# ever had, so a test sees a relay that flickered, not just where it ended.
# Inputs read like pulled-up dry contacts until a test drives them; an
# input claimed with a latch keeps, as a hal's edge interrupt does, that
# its active level came, even when a test sets it back before a poll.
from agent import config, hal, log
from agent.peripherals.door import Door
from agent.peripherals.doors import Doors
from agent.thing import Thing

RELAY, SENSOR, REX, TAMPER = 26, 27, 14, 13


class Output:
    def __init__(self, pin, active_high, energised):
        self.pin = pin
        self.active_high = active_high
        self.levels = []   # every pin level written, the claim included
        self._set(energised)

    def _set(self, energised):
        self.energised = energised
        self.levels.append(1 if energised == self.active_high else 0)

    def on(self):
        self._set(True)

    def off(self):
        self._set(False)


class Input:
    def __init__(self, pull, latch):
        self.level = 0 if pull == "down" else 1
        self.latch = latch
        self.seen = False

    def value(self):
        return self.level

    def drive(self, level):
        if level != self.level and level == self.latch:
            self.seen = True
        self.level = level

    def latched(self):
        assert self.latch is not None, "latched() on an input claimed without a latch"
        seen, self.seen = self.seen, False
        return seen


class Pins:
    def __init__(self):
        self.claimed = {}

    def _claim(self, pin, part):
        assert 0 <= pin <= 63, "no GPIO %r" % pin
        assert pin not in self.claimed, "GPIO %d claimed twice" % pin
        self.claimed[pin] = part
        return part

    def output(self, pin, active_high=True, energised=False):
        return self._claim(pin, Output(pin, active_high, energised))

    def input(self, pin, pull=None, latch=None):
        assert pull in ("up", "down", None), "pull %r" % (pull,)
        assert latch in (0, 1, None), "latch %r" % (latch,)
        return self._claim(pin, Input(pull, latch))

    def set(self, pin, level):
        self.claimed[pin].drive(level)


class Events:
    """A Thing listener that keeps the events, or refuses them all (a
    journal that cannot write): the Thing tells the door so either way."""

    def __init__(self, thing, refuse=False):
        self.seen = []
        self.refuse = refuse
        thing.listen(self._heard)

    def _heard(self, kind, name, value):
        if kind != "event":
            return None
        if self.refuse:
            return False
        self.seen.append((name, value))
        return True

    def names(self):
        return [n for n, _ in self.seen]

    def take(self):
        out, self.seen = self.seen, []
        return out


class Board:
    """Doors on one Thing, their pins and their events. Time is the test's:
    poll(after_ms) runs every door's poll as if that long had passed since
    the board was made (or since the last poll at a given time)."""

    def __init__(self, *door_fields, gmt=0, refuse=False, folder=None):
        self.thing = Thing("d1")
        self.pins = Pins()
        self.events = Events(self.thing, refuse)
        self.doors = Doors(self.thing)
        self.t0 = hal.ticks_ms()
        for fields in door_fields or ({},):
            cfg = config.peripheral("door", dict({"relay_pin": RELAY, "sensor_pin": SENSOR, "name": "front"},
                                                 **fields))
            self.doors.add(Door(self.thing, self.pins, cfg, gmt, folder))
            close(self.pins, cfg)

    def door(self, i=0):
        return self.doors.doors[i]

    def relay(self, pin=RELAY):
        return self.pins.claimed[pin]

    def poll(self, after_ms):
        now = hal.ticks_add(self.t0, after_ms)
        for door in self.doors.doors:
            door.poll(now)

    def settle(self, from_ms, polls=3, every_ms=60):
        """Polls a debounce apart from `from_ms` on: a level set before is
        taken. -> the time of the last poll."""
        t = from_ms
        for _ in range(polls):
            self.poll(t)
            t += every_ms
        return t - every_ms


def close(pins, cfg):
    """The door closed: its sensor at the closed level (NC: 0 with the pull-up)."""
    if cfg["sensor_pin"] is not None and cfg["sensor"] != "none":
        pins.set(cfg["sensor_pin"], 0 if cfg["sensor"] == "nc" else 1)


def counted(name):
    return log.counters.get(name, 0)
