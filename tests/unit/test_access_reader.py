# A Wiegand reader at a door, end to end on both runtimes: frames as the
# wires give them (tests/unit/test_reader.py's encoders), the real reader,
# access controller, user store and door - a card opens the relay, a
# card and its PIN open it, three wrong PINs shut PINs out at that door,
# and no PIN reaches an event.
from test_reader import card26, keys, show

from agent import config, hal, log
from agent.access.controller import Access
from agent.access.users import UserStore
from agent.codecs.wiegand import Port
from agent.peripherals.reader import Reader

from door_pins import Board
from support import tmpdir

PIN = "2580"


class Wires:
    """The reader's D0/D1 pins: the hal's Wiegand port (the class every hal uses)."""

    def wiegand(self, d0_pin, d1_pin, frame_gap_ms=100):
        return Port(frame_gap_ms, hal.ticks_diff)


def door_with_reader(mode):
    log.set_level("error")
    board = Board()
    store = UserStore(tmpdir() + "/users/d1")
    access = Access(board.thing, store, board.doors, {"gmt": 0, "max_frame": 16384},
                    config._check("-", {}, config.ACCESS_FIELDS))
    reader = Reader(access, Wires(), config.peripheral("wiegand", {"d0_pin": 4, "d1_pin": 5, "door": "front",
                                                                      "mode": mode}))
    return board, store, reader


def opened(board):
    return board.relay().levels.count(1)


def decisions(board):
    return [(n, p.get("user"), p.get("reason")) for n, p in board.events.take() if n in ("unlocked", "access_denied")]


async def test_a_card_at_the_reader_opens_the_door_for_its_user_only():
    board, store, reader = door_with_reader("card")
    store.put({"id": "ann", "cards": [42 << 16 | 1001]})
    await show(reader, card26(42 << 16 | 1001), 0)
    await show(reader, card26(42 << 16 | 1002), 1000)
    assert opened(board) == 1
    assert decisions(board) == [("unlocked", "ann", None), ("access_denied", None, "unknown_card")]


async def test_card_then_pin_at_the_keypad_and_three_wrong_pins_lock_pins_out():
    board, store, reader = door_with_reader("card_pin")
    card = 7 << 16 | 77
    store.put({"id": "bo", "cards": [card], "pin": PIN})
    await show(reader, card26(card), 0)
    t = await keys(reader, PIN + "#", 100)
    assert opened(board) == 1
    for wrong in ("1111#", "2222#", "3333#"):
        await show(reader, card26(card), t)
        t = await keys(reader, wrong, t + 100)
    await show(reader, card26(card), t)
    await keys(reader, PIN + "#", t + 100)
    assert opened(board) == 1
    got = board.events.take()
    assert [p.get("reason") for n, p in got if n == "access_denied"] == ["wrong_pin"] * 3 + ["pin_locked_out"]
    for _, payload in got:
        for pin in (PIN, "1111", "2222", "3333"):
            assert pin not in repr(payload)
