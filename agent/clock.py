# The device's wall clock: the board's clock plus a correction learned from
# the cloud (CloudSolution `cloudtime`, XML SetTime, a set_time command).
# Punch times are local wall-clock strings, as terminals send them
# ("2026-05-12T09:15:30" plus a GMT offset in hours; agent.codecs.values
# writes and reads them, and is imported by what needs it, not here: a door
# agent never formats a wall-clock time). The board's own clock is never
# set: a Pi's belongs to the OS, an ESP32's RTC is reset anyway at power-up.
from agent import hal, log, records

DRIFT_REPORT_S = 60   # a correction larger than this is reported as an event
_offset = [0]


def now():
    """Seconds since 1970-01-01 UTC, corrected by the cloud's time."""
    return int(hal.wall_time()) + _offset[0]


def set_from_cloud(epoch):
    """The cloud says it is `epoch` now; returns the drift it corrected.
    ValueError for a time outside 2020-2100: the clock is left alone."""
    if not records.plausible_time(epoch):
        log.count("bad_cloud_time")
        raise ValueError("cloud time %r is outside 2020-2100: not believed" % (epoch,))
    drift = int(epoch) - now()
    _offset[0] += drift
    if abs(drift) >= DRIFT_REPORT_S:
        log.count("clock_corrections")
        log.warn("clock", "device clock was %+d s off the cloud's; corrected" % -drift)
    return drift
