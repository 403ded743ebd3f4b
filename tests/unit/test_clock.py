from agent import clock, log
from agent.codecs import values

from support import raises


def test_wall_clock_text_and_back():
    t = 1778577330  # 2026-05-12T09:15:30Z
    assert values.epoch_wall(t) == "2026-05-12T09:15:30"
    assert values.epoch_wall(t, 8) == "2026-05-12T17:15:30"
    assert values.wall_epoch("2026-05-12T09:15:30") == t
    assert values.wall_epoch("2026-05-12T17:15:30", 8) == t


def test_parse_lenient_formats():
    t = values.wall_epoch("2026-06-12T10:30:00Z")
    assert values.wall_epoch("2026-06-12 10:30:00") == t
    assert values.wall_epoch(" 2026-06-12T10:30:00 ") == t
    assert values.wall_epoch("2013-05-06-T11:09:30Z") == values.wall_epoch("2013-05-06T11:09:30")
    for bad in ("", "yesterday", "2026-13-01T00:00:00", "2026-01-01", None, 5, "2026-02-29T00:00:00",
                "2026-04-31T00:00:00", "2100-02-29T00:00:00", "x" * 65):
        assert values.wall_epoch(bad) is None, bad


def test_dates_across_leap_years():
    assert values.wall_epoch("1970-01-01T00:00:00") == 0
    assert values.wall_epoch("2000-03-01T00:00:00") == 951868800
    assert values.wall_epoch("2024-02-29T12:00:00") == 1709208000
    assert values.wall_epoch("2000-02-29T00:00:00") == 951782400


def test_zones_are_read_only_where_trusted():
    # Terminals write local time despite a Z: by default a zone is ignored.
    assert values.wall_epoch("2026-06-12T18:30:00Z", 8) == 1781260200
    assert values.wall_epoch("2026-06-12T18:30:00Z", 8, trust_zone=True) == 1781289000
    assert values.wall_epoch("2026-06-12T18:30:00+08:00", 0, trust_zone=True) == 1781260200
    assert values.wall_epoch("2026-06-12T05:00:00-0530", 0, trust_zone=True) == 1781260200
    assert values.wall_epoch("2026-06-12T18:30:00.250+08:00", 0, trust_zone=True) == 1781260200
    assert values.parse_stamp("2026-06-12 18:30:00") == ((2026, 6, 12, 18, 30, 0), None)


def test_integers_as_peers_write_them():
    for text, n in ((7, 7), ("12", 12), (" 12 ", 12), ("-3", -3), ("+4", 4), ("007", 7)):
        assert values.as_int(text) == n, text
    for bad in (True, False, 1.5, None, "", "1_0", "0x1f", "\u00b2", "12a", "9" * 19, [1]):
        assert values.as_int(bad) is None, bad
    assert values.is_int(3) and not values.is_int(True) and not values.is_int("3")


def test_local_clock_follows_the_cloud():
    before = clock.now()
    drift = clock.set_from_cloud(before + 3600)
    try:
        local = values.wall_epoch(values.epoch_wall(clock.now(), 8), 8)
        assert abs(local - (before + 3600)) <= 2
    finally:
        clock.set_from_cloud(clock.now() - drift)


def test_cloud_time_corrects_the_clock_and_reports_drift():
    before = clock.now()
    drift = clock.set_from_cloud(before + 3600)
    try:
        assert 3599 <= drift <= 3601
        assert abs(clock.now() - (before + 3600)) <= 1
        assert abs(clock.set_from_cloud(clock.now())) <= 1  # no drift: nothing changes
    finally:
        clock.set_from_cloud(clock.now() - drift)


def test_a_cloud_time_outside_2020_to_2100_is_not_believed():
    before = clock.now()
    for bad in (0, 1763900000000, -5, 4102444800):  # the epoch, milliseconds, negative, 2100
        e = raises(ValueError, clock.set_from_cloud, bad)
        assert "2020-2100" in str(e)
    assert abs(clock.now() - before) <= 1  # untouched


def test_the_clock_knows_how_long_ago_it_was_set_and_by_whom():
    # NTP on an ESP32 (agent/hal/wifi.py) asks only when nobody set the
    # time for hours; what it gets goes through the same checks.
    clock.set_from_cloud(clock.now())
    assert clock.set_age_s() <= 1
    e = raises(ValueError, clock.set_from_cloud, 5, "ntp")
    assert "ntp time" in str(e)
    assert log.counters.get("bad_ntp_time", 0) >= 1
