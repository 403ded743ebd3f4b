# Temperature/humidity sensor: read every poll_s, sent as telemetry on its
# interval and as soon as a value has moved beyond its deadband since the
# last sample sent. Every sample is a durable record, so never more than
# one a second (flash wear: agent/config.py, _INTERVAL), however fast the
# values move. Every failed read is counted; the log says when the sensor
# starts failing and when it reads again, not every 2 s in between.
import asyncio

from agent import hal, log

MIN_GAP_MS = 1000


class Climate:
    __slots__ = ("thing", "sensor", "interval_ms", "poll_s", "deadband_c", "deadband_pct", "_sent", "_sent_ms",
                 "_failed")

    def __init__(self, thing, io, cfg, default_interval):
        self.thing = thing
        self.sensor = io.climate_sensor(cfg)
        self.interval_ms = int((cfg["interval_s"] or default_interval) * 1000)
        self.poll_s = min(cfg["poll_s"], self.interval_ms / 1000)
        self.deadband_c = cfg["deadband_c"]
        self.deadband_pct = cfg["deadband_pct"]
        self._sent = None      # (temperature, humidity) of the last sample sent
        self._sent_ms = 0
        self._failed = 0       # failed reads in a row
        thing.prop("temperature")
        thing.prop("humidity")

    def offer(self, t, h, now_ms):
        """A reading taken at now_ms (hal.ticks_ms): sent as a sample when
        the interval has passed or a value moved beyond its deadband, and
        at least MIN_GAP_MS after the last one. True when sent."""
        last = self._sent
        if last is not None:
            since = hal.ticks_diff(now_ms, self._sent_ms)
            if since < MIN_GAP_MS:
                return False
            if (since < self.interval_ms and abs(t - last[0]) <= self.deadband_c
                    and abs(h - last[1]) <= self.deadband_pct):
                return False
        self.thing.sample({"temperature": t, "humidity": h})
        self._sent = (t, h)
        self._sent_ms = now_ms
        return True

    def wait_ms(self, now_ms):
        """How long to sleep before the next read: poll_s, or less when the
        interval falls due sooner (a 5 s interval polled every 2 s would
        otherwise send every 6 s)."""
        wait = int(self.poll_s * 1000)
        if self._sent is not None:
            due = self.interval_ms - hal.ticks_diff(now_ms, self._sent_ms)
            if 0 < due < wait:
                wait = due
        return wait

    async def step(self):
        """One read, sent if it is due."""
        try:
            t, h = await self.sensor.read()
            # NaN and infinities are what a failing sensor returns, and
            # JSON cannot carry them: a reading, not a record, is lost.
            if not (-1e6 < t < 1e6 and -1e6 < h < 1e6):
                raise OSError("sensor returned %r, %r" % (t, h))
        except OSError as e:
            log.count("sensor_errors")
            if not self._failed:
                log.warn("climate", "sensor read failed: %s (further failures are only counted: sensor_errors)"
                         % e)
            self._failed += 1
            return
        if self._failed:
            log.info("climate", "sensor reads again after %d failed reads" % self._failed)
            self._failed = 0
        self.offer(t, h, hal.ticks_ms())

    async def run(self):
        while True:
            await self.step()
            await asyncio.sleep(self.wait_ms(hal.ticks_ms()) / 1000)
