# The device's wall clock: the board's clock plus a correction learned from
# the cloud (CloudSolution `cloudtime`, XML SetTime). Punch times are local
# wall-clock strings, as terminals send them ("2026-05-12T09:15:30" plus a
# GMT offset in hours). The board's own clock is never set: a Pi's belongs
# to the OS, an ESP32's RTC is reset anyway at power-up.
import time

from agent import hal, log

DRIFT_REPORT_S = 60   # a correction larger than this is reported as an event
_offset = [0]


def now():
    """Seconds since 1970-01-01 UTC, corrected by the cloud's time."""
    return int(hal.wall_time()) + _offset[0]


def set_from_cloud(epoch):
    """The cloud says it is `epoch` now; returns the drift it corrected."""
    drift = int(epoch) - now()
    _offset[0] += drift
    if abs(drift) >= DRIFT_REPORT_S:
        log.count("clock_corrections")
        log.warn("clock", "device clock was %+d s off the cloud's; corrected" % -drift)
    return drift


def local_iso(epoch, gmt_hours=0):
    t = time.gmtime(int(epoch + gmt_hours * 3600))
    return "%04d-%02d-%02dT%02d:%02d:%02d" % (t[0], t[1], t[2], t[3], t[4], t[5])


def _days_from_civil(y, m, d):
    # Days since 1970-01-01 (proleptic Gregorian); no calendar module on MicroPython.
    y -= m <= 2
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def parse_iso(text, gmt_hours=0):
    """'YYYY-MM-DDTHH:MM:SS' (also with a space, a trailing Z, or the
    '2013-05-06-T11:09:30Z' some terminals send) -> epoch seconds, reading
    the wall clock as GMT+gmt_hours. None when it is not a time."""
    if not isinstance(text, str):
        return None
    s = text.strip().rstrip("Z").replace("-T", "T").replace(" ", "T")
    try:
        date, clock = s.split("T")
        y, mo, d = [int(x) for x in date.split("-")]
        hh, mm, ss = [int(float(x)) for x in clock.split(":")]
    except ValueError:
        return None
    if not (1 <= mo <= 12 and 1 <= d <= 31 and 0 <= hh < 24 and 0 <= mm < 60 and 0 <= ss < 61):
        return None
    return _days_from_civil(y, mo, d) * 86400 + hh * 3600 + mm * 60 + ss - int(gmt_hours * 3600)
