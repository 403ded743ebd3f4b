# The boot counter on flash: after repeated unstable boots the agent starts
# in safe mode; a stable run or a clean restart starts the next normally.
from agent import log
from agent.boot_state import NAME, BootState

from support import tmpdir


def _boot(folder, after=3):
    boot = BootState(folder, after)
    boot.begin()
    return boot


def _stored(folder):
    with open(folder + "/" + NAME) as f:
        return f.read()


def test_three_unstable_boots_in_a_row_start_the_fourth_in_safe_mode():
    folder = tmpdir()
    assert [_boot(folder).safe for _ in range(3)] == [False, False, False]
    fourth = _boot(folder)
    assert fourth.safe and fourth.count == 3
    # Still crashing in safe mode: it stays there.
    assert _boot(folder).safe


def test_a_stable_run_or_a_clean_restart_starts_the_next_boot_normally():
    folder = tmpdir()
    for _ in range(3):
        _boot(folder)
    safe = _boot(folder)
    assert safe.safe
    safe.stable()   # what a reboot command or stable_s of health does
    nxt = _boot(folder)
    assert not nxt.safe and nxt.count == 0
    assert _stored(folder) == "1\n"


def test_the_count_is_on_flash_before_the_boot_goes_on():
    # A crash right after begin() must still have counted this boot.
    folder = tmpdir()
    _boot(folder)
    _boot(folder)
    assert _stored(folder) == "2\n"


def test_zero_means_never_safe_mode():
    folder = tmpdir()
    assert not any(_boot(folder, after=0).safe for _ in range(5))


def test_a_broken_counter_file_is_counted_and_read_as_zero():
    for text in ("garbage", "-4\n", "9" * 5000, "", "1e3"):
        folder = tmpdir()
        with open(folder + "/" + NAME, "w") as f:
            f.write(text)
        before = log.counters.get("boot_state_bad", 0)
        boot = _boot(folder, after=1)
        assert boot.count == 0 and not boot.safe, text
        assert log.counters.get("boot_state_bad", 0) == before + 1, text
        assert _stored(folder) == "1\n"


def test_a_flash_that_refuses_the_counter_costs_the_counter_not_the_agent():
    missing = tmpdir() + "/not-there"
    before = log.counters.get("boot_state_errors", 0)
    for _ in range(4):
        assert not _boot(missing, after=1).safe   # never safe: the count cannot grow
    assert log.counters.get("boot_state_errors", 0) == before + 4
