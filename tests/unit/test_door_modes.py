# A door's modes on both runtimes: held unlocked by command or by its
# weekly normal-open hours on the site's wall clock, lockdown (no grant
# opens it, the exit button still does), and the fail state safe mode holds.
from agent import clock, hal
from agent.errors import CommandError

from door_pins import REX, Board, counted
from support import araises

MONDAY_0800_UTC = 1781510400   # 2026-06-15 08:00:00Z, a Monday
WORK_HOURS = [[0x1F, 8 * 60, 17 * 60]]


def _at(epoch):
    # The device clock as the cloud would set it.
    clock.set_from_cloud(epoch)


def _back_to_real_time():
    clock.set_from_cloud(int(hal.wall_time()))


def test_normal_open_hours_hold_the_door_unlocked_on_the_site_wall_clock():
    board = Board({"normal_open": WORK_HOURS}, gmt=2)
    try:
        _at(MONDAY_0800_UTC - 2 * 3600 - 60)   # 07:59 at GMT+2
        board.settle(0)
        assert board.thing.get("front.lock") == "locked" and board.thing.get("front.mode") == "normal"
        _at(MONDAY_0800_UTC - 2 * 3600)        # 08:00 local
        board.poll(2000)
        assert board.thing.get("front.lock") == "unlocked" and board.thing.get("front.mode") == "normal_open"
        assert board.events.seen == [("unlocked", {"door": "front", "source": "schedule", "reason": "normal_open"}),
                                     ("door_mode", {"door": "front", "mode": "normal_open", "by": "schedule"})]
        board.poll(10000)                      # a pulse's end does not lock a door held open
        assert board.thing.get("front.lock") == "unlocked"
        _at(MONDAY_0800_UTC + 7 * 3600)        # 17:00 local
        board.poll(12000)
        assert board.thing.get("front.lock") == "locked" and board.thing.get("front.mode") == "normal"
        assert board.events.seen[-2:] == [("door_mode", {"door": "front", "mode": "normal", "by": "schedule"}),
                                          ("locked", {"door": "front", "reason": "schedule"})]
        assert board.relay().levels == [0, 1, 0]
    finally:
        _back_to_real_time()


def test_a_clock_nobody_set_holds_no_door_open():
    board = Board({"normal_open": [[0x7F, 0, 1440]]})   # always, on a set clock
    door = board.door()
    door.check_schedule(0)          # 1970: the board's clock before anyone set it
    assert board.thing.get("front.lock") == "locked"
    door.check_schedule(MONDAY_0800_UTC)
    assert board.thing.get("front.lock") == "unlocked"


def test_normal_open_hours_that_cannot_be_journaled_do_not_open_the_door():
    board = Board({"normal_open": [[0x7F, 0, 1440]]}, refuse=True)
    before = counted("unlocks_not_journaled")
    board.door().check_schedule(MONDAY_0800_UTC)
    assert board.relay().levels == [0] and counted("unlocks_not_journaled") == before + 1
    board.events.refuse = False
    board.door().check_schedule(MONDAY_0800_UTC + 1)   # tried again at the next check
    assert board.thing.get("front.lock") == "unlocked"


async def test_normal_open_by_command_until_normal_again():
    board = Board()
    assert await board.thing.call("door_mode", {"mode": "normal_open"}) == {"mode": "normal_open"}
    assert board.thing.get("front.lock") == "unlocked"
    await board.thing.call("unlock", {"duration_ms": 5000})   # a card while held open: journaled, no relay change
    assert board.relay().levels == [0, 1] and board.events.names()[-1] == "unlocked"
    assert await board.thing.call("door_mode", {"mode": "normal"}) == {"mode": "normal"}
    assert board.thing.get("front.lock") == "unlocked"      # that card's pulse runs its course
    board.poll(6000)
    assert board.thing.get("front.lock") == "locked"
    await araises(CommandError, board.thing.call("door_mode", {"mode": "open_sesame"}))


async def test_lockdown_refuses_every_grant_but_not_the_exit_button():
    board = Board({"rex_pin": REX, "normal_open": [[0x7F, 0, 1440]]})
    board.door().check_schedule(MONDAY_0800_UTC)
    assert board.thing.get("front.lock") == "unlocked"
    await board.thing.call("door_mode", {"mode": "locked"})          # overrides the schedule
    assert board.thing.get("front.lock") == "locked" and board.thing.get("front.mode") == "locked"
    assert board.door().refusal() == "door_locked_down"
    e = await araises(CommandError, board.door().grant("card", user="u1"))
    assert "door_locked_down" in str(e)
    await araises(CommandError, board.thing.call("unlock", {}))
    n = len(board.relay().levels)
    t = board.settle(0)
    board.pins.set(REX, 0)
    board.poll(t + 50)
    assert board.relay().energised and len(board.relay().levels) == n + 1   # egress is never blocked
    board.pins.set(REX, 1)
    board.poll(t + 10000)
    assert board.thing.get("front.lock") == "locked"
    await board.thing.call("door_mode", {"mode": "normal"})
    assert board.thing.get("front.mode") == "normal_open"          # the schedule holds it open again


async def test_a_mode_change_that_opens_the_door_must_be_journaled():
    board = Board(refuse=True)
    e = await araises(CommandError, board.thing.call("door_mode", {"mode": "normal_open"}))
    assert "could not be journaled" in str(e)
    assert board.relay().levels == [0] and board.thing.get("front.mode") == "normal"


async def test_safe_mode_holds_a_fail_secure_door_locked():
    board = Board({"rex_pin": REX})
    await board.thing.call("unlock", {})
    board.door().hold_fail_state()
    assert board.thing.get("front.lock") == "locked" and board.thing.get("front.mode") == "locked"
    assert board.events.seen[-2:] == [("locked", {"door": "front", "reason": "safe_mode"}),
                                      ("door_mode", {"door": "front", "mode": "locked", "by": "safe_mode"})]
    e = await araises(CommandError, board.thing.call("unlock", {}))
    assert "safe_mode" in str(e)


def test_safe_mode_releases_a_fail_safe_maglock():
    board = Board({"fail": "safe", "unlock_energised": False})
    assert board.relay().energised
    board.door().hold_fail_state()
    assert not board.relay().energised and board.thing.get("front.lock") == "unlocked"
    board.poll(100000)
    assert not board.relay().energised    # nothing relocks it while safe mode lasts
