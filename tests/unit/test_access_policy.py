# The access decision on both runtimes, as a pure function of the user,
# the door and the time: enabled, doors, valid from/until, the weekly
# schedule on the site's wall clock, and a clock that is not set.
from agent.access import policy
from agent.access.check import check

SALT = b"0123456789abcdef"
# 2026-05-11 was a Monday: 09:00 UTC that day.
MONDAY_9 = 1778490000
HOUR = 3600
MONDAY = 1
WORK_HOURS = [[0x1F, 8 * 60, 17 * 60]]   # Monday to Friday, 08:00-17:00


def user(**fields):
    return check(dict({"id": "u1"}, **fields), SALT)


def test_an_enabled_user_with_no_limits_passes_any_door_at_any_time():
    assert policy.decide(user(), "front", MONDAY_9, 0) is None
    assert policy.decide(user(), "back", 0, 0) is None   # even with the clock not set


def test_a_disabled_user_is_denied_whatever_else_holds():
    assert policy.decide(user(enabled=False), "front", MONDAY_9, 0) == "disabled"
    assert policy.decide(user(enabled=False, until=MONDAY_9 - 1), "front", 0, 0) == "disabled"


def test_doors_limit_where_a_user_passes():
    u = user(doors=["front", "garage"])
    assert policy.decide(u, "garage", MONDAY_9, 0) is None
    assert policy.decide(u, "back", MONDAY_9, 0) == "door_not_allowed"


def test_valid_from_and_until():
    u = user(**{"from": MONDAY_9, "until": MONDAY_9 + HOUR})
    assert policy.decide(u, "front", MONDAY_9 - 1, 0) == "not_yet_valid"
    assert policy.decide(u, "front", MONDAY_9, 0) is None
    assert policy.decide(u, "front", MONDAY_9 + HOUR - 1, 0) is None
    assert policy.decide(u, "front", MONDAY_9 + HOUR, 0) == "expired"


def test_the_weekly_schedule_is_read_on_the_sites_wall_clock():
    u = user(schedule=WORK_HOURS)
    assert policy.decide(u, "front", MONDAY_9, 0) is None
    assert policy.decide(u, "front", MONDAY_9 + 9 * HOUR, 0) == "outside_schedule"       # 18:00 UTC
    assert policy.decide(u, "front", MONDAY_9 + 9 * HOUR, -2) is None                    # 16:00 there
    assert policy.decide(u, "front", MONDAY_9 - 2 * HOUR + 59 * 60, 0) == "outside_schedule"   # 07:59
    assert policy.decide(u, "front", MONDAY_9 - HOUR, 0) is None                          # 08:00 sharp
    assert policy.decide(u, "front", MONDAY_9 + 5 * 24 * HOUR, 0) == "outside_schedule"  # Saturday 09:00
    assert policy.decide(user(schedule=[[1 << 5, 0, 1440]]), "front", MONDAY_9 + 5 * 24 * HOUR, 0) is None


def test_a_clock_not_set_denies_only_users_whose_access_depends_on_it():
    unset = 12345   # 1970: the board has not been told the time
    assert policy.decide(user(schedule=WORK_HOURS), "front", unset, 0) == "clock_not_set"
    assert policy.decide(user(until=MONDAY_9), "front", unset, 0) == "clock_not_set"
    assert policy.decide(user(**{"from": MONDAY_9}), "front", unset, 0) == "clock_not_set"
    assert policy.decide(user(doors=["front"]), "front", unset, 0) is None
