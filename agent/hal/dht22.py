# A DHT22 (AM2302) temperature/humidity sensor on an ESP32 data pin, through
# the firmware's `dht` driver. The sensor converts at most every 2 s and
# fails when asked sooner, so a read waits out the rest of that time; a
# reading outside the datasheet's range is a corrupt frame, not a value.
import asyncio

import dht
import machine

from agent.hal import ticks_diff, ticks_ms

INTERVAL_MS = 2000
RANGE = ((-40, 80), (0, 100))   # deg C, % relative humidity


class Dht22:
    __slots__ = ("_dev", "_gpio", "_last")

    def __init__(self, gpio):
        self._gpio = gpio
        self._dev = dht.DHT22(machine.Pin(gpio))
        self._last = None

    async def read(self):
        if self._last is not None:
            wait = INTERVAL_MS - ticks_diff(ticks_ms(), self._last)
            if wait > 0:
                await asyncio.sleep_ms(wait)
        self._last = ticks_ms()
        try:
            self._dev.measure()
        except OSError as e:
            raise OSError("DHT22 on GPIO%d did not answer (%s)" % (self._gpio, e))
        t = self._dev.temperature()
        h = self._dev.humidity()
        (t_low, t_high), (h_low, h_high) = RANGE
        if not (t_low <= t <= t_high and h_low <= h <= h_high):
            raise OSError("DHT22 on GPIO%d read %r C, %r %%: outside its range" % (self._gpio, t, h))
        return t, h
