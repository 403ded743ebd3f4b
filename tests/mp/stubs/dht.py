# Stand-in for MicroPython's `dht` (DHT22 / AM2302): the sensor on one data
# pin. A DHT22 needs 2 s between conversions; asked sooner it answers with
# nothing or the stale frame, so here a read that comes too soon fails
# (and is counted in `too_soon`), as does one the test arranges to fail
# (`fail_next`): both raise OSError(ETIMEDOUT), the firmware's error.
import time

import machine

ETIMEDOUT = 110
MIN_INTERVAL_MS = 2000
# What the sensor would read next, and how many reads should fail.
reading = {"temperature": 21.5, "humidity": 40.0}
fail_next = [0]
too_soon = [0]
measures = [0]


class DHT22:
    def __init__(self, pin):
        if not isinstance(pin, machine.Pin):
            raise TypeError("DHT22 needs a machine.Pin")
        self.pin = pin
        self._t = None
        self._h = None
        self._last = None

    def measure(self):
        now = time.ticks_ms()
        soon = self._last is not None and time.ticks_diff(now, self._last) < MIN_INTERVAL_MS
        self._last = now
        measures[0] += 1
        if soon:
            too_soon[0] += 1
            raise OSError(ETIMEDOUT)
        if fail_next[0]:
            fail_next[0] -= 1
            raise OSError(ETIMEDOUT)
        self._t = reading["temperature"]
        self._h = reading["humidity"]

    def temperature(self):
        return self._t

    def humidity(self):
        return self._h
