from agent.backoff import Backoff


def test_full_jitter_grows_to_cap():
    b = Backoff(1, 30, 30, rand=lambda: 1.0)  # the ceiling itself
    assert [b.next_delay() for _ in range(7)] == [1, 2, 4, 8, 16, 30, 30]


def test_delays_are_spread_not_fixed():
    b = Backoff(1, 30, 30)
    delays = [b.next_delay() for _ in range(12)]
    assert all(0 <= d <= 30 for d in delays)
    assert len(set(delays)) > 6


def test_quick_drop_does_not_reset_attempts():
    b = Backoff(1, 30, reset_after_s=30, rand=lambda: 1.0)
    b.next_delay()
    b.next_delay()
    b.up()
    b.down()  # dropped at once: keep backing off
    assert b.next_delay() == 4


def test_stable_period_resets_attempts():
    b = Backoff(1, 30, reset_after_s=0, rand=lambda: 1.0)
    b.next_delay()
    b.next_delay()
    b.up()
    b.down()
    assert b.next_delay() == 1
