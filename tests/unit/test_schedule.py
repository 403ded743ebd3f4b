# Weekly schedules on the site's wall clock, on both runtimes: the one rule
# doors (normal-open hours) and users (access hours) share.
from agent.schedule import in_schedule, problem

MONDAY_0800_UTC = 1781510400   # 2026-06-15 08:00:00Z, a Monday
MINUTE, HOUR = 60, 3600
MON, TUE, SUN = 1, 2, 64
WORK_HOURS = [[0x1F, 8 * 60, 17 * 60]]   # Monday to Friday, 08:00-17:00


def test_work_hours_start_inclusive_end_exclusive():
    assert in_schedule(WORK_HOURS, MONDAY_0800_UTC, 0)
    assert not in_schedule(WORK_HOURS, MONDAY_0800_UTC - 1, 0)
    assert in_schedule(WORK_HOURS, MONDAY_0800_UTC + 9 * HOUR - 1, 0)
    assert not in_schedule(WORK_HOURS, MONDAY_0800_UTC + 9 * HOUR, 0)


def test_the_days_mask_counts_from_monday():
    for day in range(7):
        inside = in_schedule([[1 << day, 0, 1440]], MONDAY_0800_UTC + day * 24 * HOUR, 0)
        assert inside and not in_schedule([[0x7F ^ (1 << day), 0, 1440]], MONDAY_0800_UTC + day * 24 * HOUR, 0)
    assert not in_schedule(WORK_HOURS, MONDAY_0800_UTC + 5 * 24 * HOUR, 0)   # Saturday 08:00


def test_the_site_wall_clock_decides_not_utc():
    # 08:00Z is 16:00 at GMT+8 and 03:00 at GMT-5: Monday all the same.
    assert in_schedule([[MON, 16 * 60, 16 * 60 + 1]], MONDAY_0800_UTC, 8)
    assert in_schedule([[MON, 3 * 60, 3 * 60 + 1]], MONDAY_0800_UTC, -5)
    # 08:00Z Monday is 23:00 Sunday at GMT-9: the day is the local one.
    assert in_schedule([[SUN, 23 * 60, 24 * 60]], MONDAY_0800_UTC, -9)
    assert not in_schedule([[MON, 0, 1440]], MONDAY_0800_UTC, -9)
    assert in_schedule([[MON, 13 * 60 + 30, 13 * 60 + 31]], MONDAY_0800_UTC, 5.5)   # India


def test_an_entry_ending_before_it_starts_runs_past_midnight():
    night = [[MON, 22 * 60, 6 * 60]]   # Monday 22:00 to Tuesday 06:00
    monday_2300 = MONDAY_0800_UTC + 15 * HOUR
    assert in_schedule(night, monday_2300, 0)
    assert in_schedule(night, monday_2300 + 6 * HOUR, 0)                  # Tuesday 05:00
    assert not in_schedule(night, monday_2300 + 7 * HOUR, 0)              # Tuesday 06:00
    assert not in_schedule(night, MONDAY_0800_UTC - 4 * HOUR, 0)          # Monday 04:00: Sunday's night
    assert not in_schedule(night, MONDAY_0800_UTC + 13 * HOUR, 0)         # Monday 21:00


def test_an_empty_schedule_never_matches():
    assert not in_schedule([], MONDAY_0800_UTC, 0)


def test_what_a_file_or_the_cloud_sends_is_checked():
    assert problem([]) is None and problem(WORK_HOURS) is None and problem([[127, 0, 1440]]) is None
    for bad in (None, "08:00-17:00", {"days": 1}, [[1, 0]], [[1, 0, 60, 9]], [[0, 0, 60]], [[128, 0, 60]],
                [[1, -1, 60]], [[1, 0, 1441]], [[1, 1440, 60]], [[1, 0.5, 60]], [[True, 0, 60]], [["1", 0, 60]],
                [[1, 0, 60]] * 9, [7]):
        assert problem(bad), bad


def test_an_entry_that_starts_when_it_ends_is_refused_not_read_as_a_whole_day():
    # "00:00-00:00" is "closed" to the vendors, 24 h to the past-midnight rule.
    for start in (0, 480, 1439):
        why = problem([[0x1F, 8 * 60, 17 * 60], [MON, start, start]])
        assert "entry 1: starts and ends at minute %d" % start in why and "0-1440" in why
    assert problem([[MON, 0, 1440]]) is None and problem([[MON, 1439, 0]]) is None
