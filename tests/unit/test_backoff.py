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


def _retry_times(rand, attempts=6):
    b = Backoff(1, 30, 30, rand=rand)
    t, out = 0.0, []
    for _ in range(attempts):
        t += b.next_delay()
        out.append(t)
    return out


def _xorshift(seed):
    # A seeded source per agent (MicroPython's random has no Random class).
    state = [(seed * 2654435761 + 1) & 0xFFFFFFFF]

    def rand():
        x = state[0]
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        state[0] = x
        return x / 4294967296
    return rand


def test_fifty_agents_do_not_retry_in_lockstep():
    agents = [_retry_times(_xorshift(seed)) for seed in range(50)]
    # Lockstep is two agents hitting the server together again and again:
    # no pair may retry within 10 ms of each other more than once.
    for i in range(50):
        for j in range(i + 1, 50):
            together = sum(1 for k in range(6) if abs(agents[i][k] - agents[j][k]) < 0.01)
            assert together <= 1, (i, j, agents[i], agents[j])
    # And each wave of retries is spread over its window, not bunched.
    for attempt in range(6):
        times = sorted(a[attempt] for a in agents)
        assert times[-1] - times[0] > 0.5 * min(30, 2 ** attempt)


def test_default_jitter_draws_fresh_entropy():
    a = _retry_times(None)
    b = _retry_times(None)
    assert a != b
