# The device's wall clock: the board's clock plus a correction learned from
# the cloud (CloudSolution `cloudtime`, XML SetTime, a set_time command).
# Punch times are local wall-clock strings, as terminals send them
# ("2026-05-12T09:15:30" plus a GMT offset in hours; agent.codecs.values
# writes and reads them, and is imported by what needs it, not here: a door
# agent never formats a wall-clock time). The board's own clock is never
# set: a Pi's belongs to the OS, an ESP32's RTC is reset anyway at power-up.
# Where no cloud gives the time, an ESP32 asks NTP (agent/hal/wifi.py) and
# corrects the same offset.
from agent import hal, log, records

DRIFT_REPORT_S = 60   # a correction larger than this is reported as an event
_offset = [0]
_set_at = [None]   # now() when the time was last set; None: not since start-up


def now():
    """Seconds since 1970-01-01 UTC, corrected by the cloud's time."""
    return int(hal.wall_time()) + _offset[0]


def set_from_cloud(epoch, source="cloud"):
    """The cloud (or `source`: "ntp") says it is `epoch` now; returns the
    drift it corrected. ValueError for a time outside 2020-2100: the clock
    is left alone."""
    if not records.plausible_time(epoch):
        log.count("bad_%s_time" % source)
        raise ValueError("%s time %r is outside 2020-2100: not believed" % (source, epoch))
    drift = int(epoch) - now()
    _offset[0] += drift
    _set_at[0] = int(epoch)
    if abs(drift) >= DRIFT_REPORT_S:
        log.count("clock_corrections")
        log.warn("clock", "device clock was %+d s off the %s's; corrected" % (-drift, source))
    return drift


def set_age_s():
    """Seconds since the time was last set, or None if it was not set since
    start-up."""
    if _set_at[0] is None:
        return None
    return now() - _set_at[0]
