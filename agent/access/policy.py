# Whether a known user may pass a door now: a pure function of the user's
# record (agent/access/record.py), the door, the time and the site's
# offset, so it is tested without a clock, a store or a door.
#
# The order of the checks decides which reason a denial gives: the
# reasons a clock cannot change come first, so a disabled user reads
# "disabled" and not "expired" on a board whose clock is not set yet.
from agent import records
from agent.access import record as R

DISABLED = "disabled"
DOOR_NOT_ALLOWED = "door_not_allowed"
CLOCK_NOT_SET = "clock_not_set"
NOT_YET_VALID = "not_yet_valid"
EXPIRED = "expired"
OUTSIDE_SCHEDULE = "outside_schedule"


def decide(rec, door, now, gmt):
    """None when the user may pass `door` at `now` (UTC epoch seconds, the
    site `gmt` hours east), else the denial reason. A clock that is not
    set (records.plausible_time false) denies only users whose access
    depends on it: a board that lost its time still opens for the others."""
    if not rec[R.ENABLED]:
        return DISABLED
    if rec[R.DOORS] is not None and door not in rec[R.DOORS]:
        return DOOR_NOT_ALLOWED
    timed = rec[R.FROM] is not None or rec[R.UNTIL] is not None or rec[R.SCHEDULE] is not None
    if not timed:
        return None
    if not records.plausible_time(now):
        return CLOCK_NOT_SET
    if rec[R.FROM] is not None and now < rec[R.FROM]:
        return NOT_YET_VALID
    if rec[R.UNTIL] is not None and now >= rec[R.UNTIL]:
        return EXPIRED
    if rec[R.SCHEDULE] is not None:
        # Loaded by the first user with a schedule: many boards have none (RAM).
        from agent.schedule import in_schedule
        if not in_schedule(rec[R.SCHEDULE], now, gmt):
            return OUTSIDE_SCHEDULE
    return None
