from agent import clock


def test_local_iso_and_parse_round_trip():
    t = 1778577330  # 2026-05-12T09:15:30Z
    assert clock.local_iso(t) == "2026-05-12T09:15:30"
    assert clock.local_iso(t, 8) == "2026-05-12T17:15:30"
    assert clock.parse_iso("2026-05-12T09:15:30") == t
    assert clock.parse_iso("2026-05-12T17:15:30", 8) == t


def test_parse_lenient_formats():
    t = clock.parse_iso("2026-06-12T10:30:00Z")
    assert clock.parse_iso("2026-06-12 10:30:00") == t
    assert clock.parse_iso(" 2026-06-12T10:30:00 ") == t
    assert clock.parse_iso("2013-05-06-T11:09:30Z") == clock.parse_iso("2013-05-06T11:09:30")
    for bad in ("", "yesterday", "2026-13-01T00:00:00", "2026-01-01", None, 5):
        assert clock.parse_iso(bad) is None, bad


def test_dates_across_leap_years():
    assert clock.parse_iso("1970-01-01T00:00:00") == 0
    assert clock.parse_iso("2000-03-01T00:00:00") == 951868800
    assert clock.parse_iso("2024-02-29T12:00:00") == 1709208000


def test_cloud_time_corrects_the_clock_and_reports_drift():
    before = clock.now()
    drift = clock.set_from_cloud(before + 3600)
    try:
        assert 3599 <= drift <= 3601
        assert abs(clock.now() - (before + 3600)) <= 1
        assert abs(clock.set_from_cloud(clock.now())) <= 1  # no drift: nothing changes
    finally:
        clock.set_from_cloud(clock.now() - drift)
