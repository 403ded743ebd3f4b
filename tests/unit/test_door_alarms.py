# What a door's sensor, exit button and tamper switch tell, on both
# runtimes: forced open (opened while locked with no grant and no exit
# button), held open (no 255 s ceiling), tamper, the early relock once the
# person is through, and alarms that stay until someone clears them.
# Time is the test's own: Board.poll(ms) says when each poll happens.
from door_pins import REX, SENSOR, TAMPER, Board


def _opened(board, at, is_open=True):
    board.pins.set(SENSOR, 1 if is_open else 0)   # NC contact with a pull-up: 1 = open
    return board.settle(at)


def test_a_door_opened_while_locked_is_forced():
    board = Board()
    t = board.settle(0)
    assert board.thing.get("front.door") == "closed" and board.events.seen == []   # closed at start: no event
    _opened(board, t + 100)
    assert board.events.names() == ["door_opened", "door_forced"]
    assert board.thing.get("front.alarms") == ["forced"] and board.thing.get("front.door") == "open"
    _opened(board, t + 500, False)
    assert board.events.names()[2:] == ["door_closed"]
    assert board.thing.get("front.alarms") == ["forced"]   # stays until someone clears it


def test_a_sensor_bounce_shorter_than_the_debounce_is_nothing():
    board = Board()
    t = board.settle(0)
    board.pins.set(SENSOR, 1)
    board.poll(t + 100)
    board.pins.set(SENSOR, 0)
    board.poll(t + 120)          # open for 20 ms of a 50 ms debounce
    board.settle(t + 200)
    assert board.events.seen == [] and board.thing.get("front.door") == "closed"


async def test_a_granted_door_is_not_forced_and_relocks_once_closed_again():
    board = Board()
    t = board.settle(0)
    await board.thing.call("unlock", {"duration_ms": 60000})
    t = _opened(board, t + 100)
    assert board.thing.get("front.lock") == "unlocked"       # still open: the pulse runs on
    _opened(board, t + 100, False)
    assert board.thing.get("front.lock") == "locked"         # through and closed: relocked at once
    assert board.events.names() == ["unlocked", "door_opened", "door_closed", "locked"]
    assert board.events.seen[-1][1] == {"door": "front", "reason": "door closed"}
    assert board.thing.get("front.alarms") == [] and board.relay().levels == [0, 1, 0]


async def test_without_relock_on_close_the_pulse_runs_its_course():
    board = Board({"relock_on_close": False})
    t = board.settle(0)
    await board.thing.call("unlock", {"duration_ms": 10000})
    t = _opened(board, t + 100)
    t = _opened(board, t + 100, False)
    assert board.thing.get("front.lock") == "unlocked"
    board.poll(12000)
    assert board.thing.get("front.lock") == "locked" and board.events.seen[-1][1]["reason"] == "timeout"


def test_the_exit_button_opens_and_suppresses_the_forced_alarm():
    board = Board({"rex_pin": REX})
    t = board.settle(0)
    board.pins.set(REX, 0)
    board.poll(t + 50)
    assert board.relay().energised                    # within one poll
    board.pins.set(REX, 1)
    t = _opened(board, t + 100)
    assert board.events.names() == ["rex", "unlocked", "door_opened"]
    assert board.events.seen[1][1] == {"door": "front", "source": "rex", "duration_ms": 3000}
    assert board.thing.get("front.alarms") == []


def test_a_door_that_began_to_open_before_the_relock_is_not_forced():
    # The pulse ends while the sensor's debounce still holds the opening back.
    board = Board({"unlock_ms": 1000})
    t = board.settle(0)
    board.door().rex()
    board.pins.set(SENSOR, 1)
    board.poll(t + 990)          # the pin is open: the debounce starts
    board.poll(t + 1500)         # the pulse is over, and the opening is taken now
    board.settle(t + 1600)
    assert "door_forced" not in board.events.names() and board.thing.get("front.alarms") == []
    assert board.thing.get("front.lock") == "locked"


async def test_a_sensor_glitch_at_the_relock_does_not_hide_a_later_forced_opening():
    board = Board({"unlock_ms": 1000})
    t = board.settle(0)
    await board.thing.call("unlock", {})        # nobody comes through
    board.pins.set(SENSOR, 1)                   # a 20 ms rattle of the contact as the strike relocks
    board.poll(t + 5000)
    board.pins.set(SENSOR, 0)
    board.poll(t + 5020)
    assert board.thing.get("front.lock") == "locked" and board.thing.get("front.door") == "closed"
    board.events.take()
    board.pins.set(SENSOR, 1)                   # an hour later, pried open while locked
    board.settle(t + 3600000)
    assert board.events.names() == ["door_opened", "door_forced"]
    assert board.thing.get("front.alarms") == ["forced"]


async def test_a_door_first_seen_opening_at_the_relock_is_not_forced():
    # The relock's own poll is the first to read the pin open: the person
    # was on the way through; the debounce confirms it only after.
    board = Board({"unlock_ms": 1000})
    t = board.settle(0)
    await board.thing.call("unlock", {})
    board.pins.set(SENSOR, 1)
    board.poll(t + 5000)
    board.settle(t + 5050)
    assert board.events.names() == ["unlocked", "locked", "door_opened"]
    assert board.thing.get("front.alarms") == []


def test_held_open_has_no_255_second_ceiling():
    board = Board({"held_open_s": 600})
    t = board.settle(0)
    board.door().rex()
    t = _opened(board, t + 100)
    board.poll(t + 599000)
    assert "door_held_open" not in board.events.names()
    board.poll(t + 601000)
    held = [v for n, v in board.events.seen if n == "door_held_open"]
    assert held == [{"door": "front", "open_s": 601}] and board.thing.get("front.alarms") == ["held_open"]
    board.poll(t + 700000)
    assert board.events.names().count("door_held_open") == 1   # once per opening
    _opened(board, t + 700100, False)
    assert board.events.seen[-2:] == [("door_closed", {"door": "front"}),
                                      ("alarm_cleared", {"door": "front", "alarm": "held_open", "by": "door closed"})]
    assert board.thing.get("front.alarms") == []


def test_tamper_is_reported_both_ways_and_stays_an_alarm_until_cleared():
    board = Board({"tamper_pin": TAMPER})
    board.pins.set(TAMPER, 0)
    t = board.settle(0)
    assert board.events.seen == []
    board.pins.set(TAMPER, 1)
    t = board.settle(t + 100)
    assert board.events.seen == [("door_tamper", {"door": "front", "active": True})]
    assert board.thing.get("front.alarms") == ["tamper"]
    assert board.door().clear_alarms() == ["tamper"]        # the box is still open: not cleared
    board.pins.set(TAMPER, 0)
    board.settle(t + 100)
    assert board.events.seen[-1] == ("door_tamper", {"door": "front", "active": False})
    assert board.thing.get("front.alarms") == ["tamper"]


async def test_clear_alarm_clears_what_is_no_longer_active():
    board = Board({"tamper_pin": TAMPER})
    board.pins.set(TAMPER, 1)   # tampered with before the agent started: still reported
    t = board.settle(0)
    t = _opened(board, t + 100)
    assert board.thing.get("front.alarms") == ["forced", "tamper"]
    board.pins.set(TAMPER, 0)
    t = board.settle(t + 100)
    board.events.take()
    assert await board.thing.call("clear_alarm", {"door": "front"}) == {"alarms": []}
    assert board.events.seen == [("alarm_cleared", {"door": "front", "alarm": "forced", "by": "cloud"}),
                                 ("alarm_cleared", {"door": "front", "alarm": "tamper", "by": "cloud"})]
    assert board.thing.get("front.alarms") == []


def test_a_door_without_a_sensor_reports_no_position_and_raises_no_alarm():
    board = Board({"sensor": "none"})
    assert SENSOR not in board.pins.claimed    # a pin named but not wired: left alone
    board.settle(0)
    board.door().rex()
    board.settle(10000)
    assert board.thing.get("front.door") == "unknown"
    assert board.events.names() == ["rex", "unlocked", "locked"]


def test_a_normally_open_sensor_reads_open_at_0():
    board = Board({"sensor": "no"})
    t = board.settle(0)
    assert board.thing.get("front.door") == "closed"
    board.pins.set(SENSOR, 0)
    board.settle(t + 100)
    assert board.thing.get("front.door") == "open" and board.events.names() == ["door_opened", "door_forced"]


def test_a_door_found_open_at_start_is_reported_but_not_forced():
    board = Board()
    board.pins.set(SENSOR, 1)
    board.settle(0)
    assert board.events.names() == ["door_opened"] and board.thing.get("front.alarms") == []
