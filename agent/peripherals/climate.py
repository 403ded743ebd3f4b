# Temperature/humidity sensor: samples on an interval and reports each
# sample as telemetry. A failed read is logged and counted; the next
# interval tries again.
import asyncio

from agent import log


class Climate:
    __slots__ = ("thing", "sensor", "interval")

    def __init__(self, thing, io, cfg, default_interval):
        self.thing = thing
        self.sensor = io.climate_sensor(cfg)
        self.interval = cfg["interval_s"] or default_interval
        thing.prop("temperature")
        thing.prop("humidity")

    async def run(self):
        while True:
            try:
                t, h = await self.sensor.read()
                # NaN and infinities are what a failing sensor returns, and
                # JSON cannot carry them: a reading, not a record, is lost.
                if not (-1e6 < t < 1e6 and -1e6 < h < 1e6):
                    raise OSError("sensor returned %r, %r" % (t, h))
                self.thing.sample({"temperature": t, "humidity": h})
            except OSError as e:
                log.count("sensor_errors")
                log.warn("climate", "sensor read failed: %s" % e)
            await asyncio.sleep(self.interval)
