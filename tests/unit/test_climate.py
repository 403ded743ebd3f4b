# The climate sensor's samples on both runtimes: on the interval, at once
# when a value moves beyond its deadband, never more than one a second
# (each is a flash write), and a failing sensor counted, never a crash.
# Time is simulated (offer/wait_ms take the clock): nothing here waits.
from agent import config, log
from agent.peripherals.climate import Climate
from agent.thing import Thing


class Sensor:
    """Answers what it is given, in order: a (t, h) pair or an exception."""

    def __init__(self, *answers):
        self.answers = list(answers)

    async def read(self):
        a = self.answers.pop(0)
        if isinstance(a, Exception):
            raise a
        return a


class IO:
    def __init__(self, sensor):
        self.sensor = sensor

    def climate_sensor(self, cfg):
        return self.sensor


def _climate(sensor=None, **fields):
    thing = Thing("d1")
    sent = []
    thing.listen(lambda kind, name, value: sent.append(value) if kind == "telemetry" else None)
    fields = dict({"interval_s": 10}, **fields)
    if fields["interval_s"] is None:
        del fields["interval_s"]
    cfg = config.peripheral("climate", fields)
    return Climate(thing, IO(sensor or Sensor()), cfg, 5), thing, sent


def test_sent_on_the_interval_and_beyond_the_deadband():
    c, thing, sent = _climate(deadband_c=0.5, deadband_pct=2)
    assert c.offer(20.0, 40.0, 0)                 # the first reading: nothing sent yet
    assert not c.offer(20.4, 41.5, 2000)          # within both deadbands, interval not due
    assert c.offer(20.6, 41.5, 4000)              # 0.6 C beyond the 0.5 C deadband
    assert not c.offer(20.6, 43.0, 6000)          # 1.5 % since the last sample sent
    assert c.offer(20.6, 43.6, 8000)              # 2.1 %
    assert not c.offer(20.6, 43.6, 17000)
    assert c.offer(20.6, 43.6, 18000)             # 10 s since the last: the interval
    assert sent == [{"temperature": 20.0, "humidity": 40.0}, {"temperature": 20.6, "humidity": 41.5},
                    {"temperature": 20.6, "humidity": 43.6}, {"temperature": 20.6, "humidity": 43.6}]
    assert (thing.get("temperature"), thing.get("humidity")) == (20.6, 43.6)


def test_a_slow_drift_is_sent_once_it_adds_up():
    # The deadband counts from the last sample sent, not the last reading:
    # 0.2 C a reading never looks like a change, yet 0.6 C is one.
    c, _, sent = _climate(deadband_c=0.5)
    for i in range(4):
        c.offer(20.0 + 0.2 * i, 40.0, 2000 * i)
    assert [s["temperature"] for s in sent] == [20.0, 20.6]


def test_never_more_than_one_sample_a_second():
    # A value that jumps beyond the deadband at every read, read every
    # 100 ms for 10 s: one sample a second at most, and the jump that was
    # held back goes out as soon as the second has passed.
    c, _, sent = _climate(deadband_c=0.1, deadband_pct=0.1)
    times = [ms for ms in range(0, 10000, 100) if c.offer(20.0 + ms / 100, 40.0, ms)]
    assert len(times) == 10 and times[0] == 0
    assert [times[i + 1] - times[i] for i in range(9)] == [1000] * 9
    assert len(sent) == 10


def test_the_next_read_comes_when_the_interval_falls_due():
    c, _, _ = _climate(interval_s=5, poll_s=2)
    assert c.wait_ms(0) == 2000                   # nothing sent yet: poll
    c.offer(20.0, 40.0, 0)
    assert c.wait_ms(2000) == 2000
    assert c.wait_ms(4000) == 1000                # due at 5 s, not at the 6 s poll
    assert c.wait_ms(5000) == 2000                # overdue (a failing sensor): poll
    c, _, _ = _climate(interval_s=1, poll_s=2)
    assert c.wait_ms(0) == 1000                   # an interval shorter than the poll sets the pace


def test_the_site_interval_is_the_default():
    c, _, _ = _climate(interval_s=None)
    assert c.interval_ms == 5000


async def test_a_failing_sensor_is_counted_logged_once_and_the_next_read_goes_on():
    before = log.counters.get("sensor_errors", 0)
    c, _, sent = _climate(Sensor(OSError("bus error"), (float("nan"), 40.0), (1e300 * 10, 40.0), (21.5, 45.0),
                                 OSError("bus error again")))
    said = []
    warn, info = log.warn, log.info
    log.warn = lambda component, msg: said.append(("warn", msg))
    log.info = lambda component, msg: said.append(("info", msg))
    try:
        for _ in range(5):
            await c.step()
    finally:
        log.warn, log.info = warn, info
    assert log.counters.get("sensor_errors", 0) == before + 4
    assert sent == [{"temperature": 21.5, "humidity": 45.0}]
    # A sensor that fails every 2 s for a day is two log lines, not 43,200.
    assert said == [("warn", "sensor read failed: bus error (further failures are only counted: sensor_errors)"),
                    ("info", "sensor reads again after 3 failed reads"),
                    ("warn", "sensor read failed: bus error again (further failures are only counted: "
                             "sensor_errors)")]


def test_deadbands_and_poll_are_board_fields_with_ranges():
    cfg = config.peripheral("climate", {})
    assert (cfg["poll_s"], cfg["deadband_c"], cfg["deadband_pct"]) == (2, 0.5, 2)
    from agent.errors import ConfigError

    from support import raises
    for field, bad in (("poll_s", 0.1), ("deadband_c", 0), ("deadband_pct", -1), ("deadband_c", "1")):
        e = raises(ConfigError, config.peripheral, "climate", {field: bad})
        assert e.field == field, (field, bad, str(e))
