# Weekly schedules on the site's wall clock, for a door's normal-open hours
# (peripherals/door.py) and a user's access hours (access/policy.py): one
# rule for both, so a door and a user never disagree on what "Monday
# 08:00" means. A schedule is a list of [days_mask, start_minute,
# end_minute]: days_mask bit 0 = Monday ... bit 6 = Sunday, minutes of the
# local day, start inclusive, end exclusive. An entry whose end is
# before its start runs past midnight: its days name the day it starts on
# (a night shift Monday 22:00 to Tuesday 06:00 is [1, 1320, 360]).
from agent.codecs.ints import is_int

MAX_ENTRIES = 8
DAY_MINUTES = 1440
ALL_DAYS = 0x7F


def problem(schedule):
    """Why `schedule` (from a board file or the cloud) is not one, or None.
    Checked before use: the matcher trusts what passed here."""
    if not isinstance(schedule, list):
        return "must be a list of [days_mask, start_minute, end_minute]"
    if len(schedule) > MAX_ENTRIES:
        return "holds %d entries, at most %d" % (len(schedule), MAX_ENTRIES)
    for i, entry in enumerate(schedule):
        # Never quoted whole: from the cloud it could be as large as a frame.
        if not isinstance(entry, list) or len(entry) != 3 or not all(is_int(v) for v in entry):
            return "entries must be [days_mask, start_minute, end_minute], three integers (entry %d is not)" % i
        days, start, end = entry
        if not 1 <= days <= ALL_DAYS:
            return "entry %d: days_mask must be from 1 to 127 (bit 0 = Monday), got %d" % (i, days)
        if not 0 <= start < DAY_MINUTES or not 0 <= end <= DAY_MINUTES:
            return "entry %d: minutes must be from 0 to 1440, got %d-%d" % (i, start, end)
        if start == end:
            # 24 h here, "closed" in the vendors' 00:00-00:00: either reading
            # surprises someone, so neither is taken.
            return ("entry %d: starts and ends at minute %d: for a whole day use 0-1440, for none leave "
                    "the entry out" % (i, start))
    return None


def in_schedule(schedule, epoch, gmt):
    """Whether `epoch` (UTC seconds) falls in `schedule` on the wall clock
    `gmt` hours east of UTC."""
    local = int(epoch + gmt * 3600)
    days = local // 86400
    minute = (local % 86400) // 60
    # 1970-01-01 was a Thursday: Monday-based weekday 3.
    today = 1 << (days + 3) % 7
    yesterday = 1 << (days + 2) % 7
    for days_mask, start, end in schedule:
        if start < end:
            if days_mask & today and start <= minute < end:
                return True
        elif (days_mask & today and minute >= start) or (days_mask & yesterday and minute < end):
            return True
    return False
