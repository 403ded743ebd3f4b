# Values as peers write them, read leniently and written strictly: the one
# integer coercion and the one time-stamp parser of the project (device
# clock, session codecs, bench). Pure functions, no clock of their own.
# is_int and as_int live in ints.py (loaded alone where no time stamp is
# read); imported from here too.
from agent.codecs.ints import DIGITS as _DIGITS
from agent.codecs.ints import as_int, is_int  # noqa: F401


def _month_days(y, m):
    if m == 2:
        return 29 if y % 4 == 0 and (y % 100 != 0 or y % 400 == 0) else 28
    return 30 if m in (4, 6, 9, 11) else 31


def parse_stamp(text):
    """A time stamp -> ((year, month, day, hour, minute, second), zone), or
    None. The first six numbers count, whatever separates them, so
    "2013-05-06-T11:09:30Z", "2026-05-12 09:15:30" and "2026/05/12 09:15:30"
    all read; so does the compact "20260512091530". `zone` is the offset the
    text states in hours (0 for a trailing Z, +8 for "+08:00" or "+0800"),
    or None: the caller decides what a zone-less time means, and whether to
    believe a Z (terminals write local wall-clock time despite one)."""
    if not isinstance(text, str) or len(text) > 64:
        return None
    nums = []   # (the separator before it, digits)
    sep = cur = ""
    for c in text.strip() + " ":
        if c in _DIGITS:
            cur += c
        elif cur:
            nums.append((sep, cur))
            sep, cur = c, ""
        else:
            sep += c
    if len(nums) == 1 and len(nums[0][1]) == 14:  # compact YYYYMMDDHHMMSS
        d = nums[0][1]
        nums = [("", d[:4]), ("", d[4:6]), ("", d[6:8]), ("", d[8:10]), ("", d[10:12]), ("", d[12:])]
    if len(nums) < 6:
        return None
    y, mo, d, h, mi, s = [int(n[1]) for n in nums[:6]]
    if not (1970 <= y <= 9999 and 1 <= mo <= 12 and 1 <= d <= _month_days(y, mo)
            and h <= 23 and mi <= 59 and s <= 60):
        return None
    zone = 0 if text.strip()[-1:] in ("Z", "z") else None
    rest = nums[6:]
    if rest and rest[0][0] == ".":
        rest = rest[1:]  # fractional seconds
    if rest and rest[0][0][-1:] in ("+", "-") and len(rest[0][1]) in (2, 4):
        hh = rest[0][1]
        mm = hh[2:] if len(hh) == 4 else (rest[1][1] if len(rest) > 1 else "0")
        zone = int(hh[:2]) + int(mm) / 60
        if rest[0][0][-1] == "-":
            zone = -zone
    return (y, mo, d, h, mi, s), zone


def parse_wall(text):
    """The (year, month, day, hour, minute, second) of a time stamp (see
    parse_stamp), its zone ignored; None when it is not a time."""
    got = parse_stamp(text)
    return None if got is None else got[0]


def wall_text(fields):
    """(y, mo, d, h, mi, s) -> "YYYY-MM-DDTHH:MM:SS", the strict form we write."""
    return "%04d-%02d-%02dT%02d:%02d:%02d" % tuple(fields[:6])


def normal_wall(text):
    """A lenient time stamp in the strict form, or None."""
    fields = parse_wall(text)
    return None if fields is None else wall_text(fields)


def _days_from_civil(y, m, d):
    # Days since 1970-01-01 (proleptic Gregorian); no calendar module on MicroPython.
    y -= m <= 2
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def fields_epoch(f, gmt_hours=0):
    """(y, mo, d, h, mi, s) on the wall clock at GMT+gmt_hours -> epoch seconds."""
    y, mo, d, hh, mm, ss = f
    return _days_from_civil(y, mo, d) * 86400 + hh * 3600 + mm * 60 + ss - int(gmt_hours * 3600)


def wall_epoch(text, gmt_hours=0, trust_zone=False):
    """A lenient time stamp -> epoch seconds, or None when it is not a time.
    Read as the wall clock at GMT+gmt_hours, or, with trust_zone, at the
    zone the text states when it states one."""
    got = parse_stamp(text)
    if got is None:
        return None
    if trust_zone and got[1] is not None:
        gmt_hours = got[1]
    return fields_epoch(got[0], gmt_hours)


def epoch_wall(epoch, gmt_hours=0):
    """Epoch seconds -> the wall clock at GMT+gmt_hours, "YYYY-MM-DDTHH:MM:SS"."""
    import time
    return wall_text(time.gmtime(int(epoch + gmt_hours * 3600)))
