# The access controller on both runtimes, over the real user store on the
# file system and real Door objects on the test pins (tests/unit/door_pins.py):
# a credential at a door opens it or not, and either way the decision is
# an event saying who, with which credential and why - never the PIN.
from agent import clock, config, hal, log
from agent.access.controller import Access
from agent.access.users import UserStore

from door_pins import RELAY, Board, counted
from support import tmpdir

SITE = {"gmt": 0, "max_frame": 16384}
PIN = "246810"


class Clock:
    """hal.ticks_ms as the test says."""

    def __init__(self):
        self.now = hal.ticks_ms()

    def __call__(self):
        return self.now

    def wait(self, ms):
        self.now = hal.ticks_add(self.now, ms)


def setup(*door_fields, refuse=False, **access):
    log.set_level("error")
    board = Board(*door_fields, refuse=refuse)
    store = UserStore(tmpdir() + "/users/d1")
    cfg = config._check("-", access, config.ACCESS_FIELDS)
    a = Access(board.thing, store, board.doors, SITE, cfg)
    a.ticks = Clock()
    return board, store, a


def unlocked_levels(board, pin=RELAY):
    # The relay of a strike energised (active high): a 1 is an open door.
    return board.relay(pin).levels.count(1)


async def test_a_known_card_opens_the_door_and_says_who():
    board, store, a = setup()
    store.put({"id": "u1", "name": "Ann", "cards": [123456]})
    assert await a.present("front", "card", card=123456) == (True, "u1", None)
    assert unlocked_levels(board) == 1
    (name, payload), = board.events.take()
    assert name == "unlocked"
    assert payload["user"] == "u1" and payload["credential"] == "123456" and payload["source"] == "card"


async def test_denials_open_nothing_and_give_their_reason():
    board, store, a = setup()
    now = clock.now()
    store.put({"id": "off", "cards": [1], "enabled": False})
    store.put({"id": "old", "cards": [2], "until": now - 60})
    store.put({"id": "soon", "cards": [3], "from": now + 3600})
    store.put({"id": "never", "cards": [4], "schedule": []})
    store.put({"id": "elsewhere", "cards": [5], "doors": ["back"]})
    cases = [(1, "off", "disabled"), (2, "old", "expired"), (3, "soon", "not_yet_valid"),
             (4, "never", "outside_schedule"), (5, "elsewhere", "door_not_allowed"), (6, None, "unknown_card")]
    for card, uid, reason in cases:
        assert await a.present("front", "card", card=card) == (False, uid, reason)
        (name, payload), = board.events.take()
        assert name == "access_denied" and payload["reason"] == reason and payload["credential"] == str(card)
        assert payload.get("user") == uid
    assert unlocked_levels(board) == 0


async def test_card_and_pin_needs_both_and_three_wrong_pins_lock_pins_out_at_that_door():
    board, store, a = setup({"name": "front"}, {"name": "back", "relay_pin": 20, "sensor_pin": 21},
                            pin_attempts=3, pin_lockout_s=60)
    store.put({"id": "u1", "cards": [77], "pin": PIN})
    assert (await a.present("front", "card_pin", card=77, pin="000000"))[2] == "wrong_pin"
    assert (await a.present("front", "pin", pin="111111"))[2] == "unknown_pin"
    before = counted("pin_lockouts")
    assert (await a.present("front", "card_pin", card=77, pin="222222"))[2] == "wrong_pin"
    assert counted("pin_lockouts") == before + 1
    # Locked out: even the right PIN is refused there, without being tried.
    assert await a.present("front", "card_pin", card=77, pin=PIN) == (False, None, "pin_locked_out")
    assert await a.present("front", "card", card=77) == (True, "u1", None)   # a card alone is no PIN
    assert await a.present("back", "card_pin", card=77, pin=PIN) == (True, "u1", None)
    a.ticks.wait(59000)
    assert (await a.present("front", "pin", pin=PIN))[2] == "pin_locked_out"
    a.ticks.wait(1000)
    assert await a.present("front", "pin", pin=PIN) == (True, "u1", None)
    for _, payload in board.events.take():
        assert PIN not in repr(payload) and "000000" not in repr(payload) and "pin" not in payload


async def test_a_right_pin_starts_the_count_of_wrong_ones_again():
    board, store, a = setup(pin_attempts=3)
    store.put({"id": "u1", "pin": PIN})
    for _ in range(4):
        assert (await a.present("front", "pin", pin="999999"))[2] == "unknown_pin"
        assert (await a.present("front", "pin", pin="999998"))[2] == "unknown_pin"
        assert (await a.present("front", "pin", pin=PIN))[0] is True


async def test_a_pin_two_users_share_names_nobody_when_it_is_all_there_is():
    board, store, a = setup()
    store.put({"id": "a", "cards": [1], "pin": "4444"})
    store.put({"id": "b", "cards": [2], "pin": "4444"})
    assert await a.present("front", "pin", pin="4444") == (False, None, "ambiguous")
    assert await a.present("front", "card_pin", card=2, pin="4444") == (True, "b", None)
    assert unlocked_levels(board) == 1


async def test_anti_passback_holds_a_user_back_at_that_door_for_its_window():
    board, store, a = setup({"name": "front", "anti_passback_s": 30},
                            {"name": "back", "relay_pin": 20, "sensor_pin": 21})
    store.put({"id": "u1", "cards": [1]})
    store.put({"id": "u2", "cards": [2]})
    assert (await a.present("front", "card", card=1))[0] is True
    assert await a.present("front", "card", card=1) == (False, "u1", "anti_passback")
    assert (await a.present("front", "card", card=2))[0] is True     # someone else
    assert (await a.present("back", "card", card=1))[0] is True      # a door without it
    assert (await a.present("back", "card", card=1))[0] is True
    a.ticks.wait(29999)
    assert (await a.present("front", "card", card=1))[2] == "anti_passback"
    a.ticks.wait(1)
    assert (await a.present("front", "card", card=1))[0] is True


def test_anti_passback_remembers_a_bounded_number_of_grants():
    from agent.access.passback import SLOTS, Passback
    p = Passback()
    t = 1000
    for i in range(SLOTS + 50):
        p.passed("u%d" % i, "front", t + i, 60000)
    now = t + SLOTS + 50
    assert p.blocked("u%d" % (SLOTS + 49), "front", now)
    assert not p.blocked("u0", "front", now)            # the oldest made room
    assert p.blocked("u60", "front", now)
    assert not p.blocked("u60", "front", now + 60000)   # its window is over


async def test_a_fingerprint_page_names_its_user():
    board, store, a = setup()
    store.put({"id": "u9", "fp": 12})
    assert await a.present("front", "fingerprint", fp=12) == (True, "u9", None)
    assert (await a.present("front", "fingerprint", fp=13))[2] == "unknown_fingerprint"


async def test_a_door_in_lockdown_opens_for_nobody():
    board, store, a = setup()
    store.put({"id": "u1", "cards": [1]})
    await board.door().set_mode("locked")
    assert await a.present("front", "card", card=1) == (False, "u1", "door_locked_down")
    assert unlocked_levels(board) == 0


async def test_a_grant_that_cannot_be_journaled_opens_nothing_and_the_denial_is_counted():
    board, store, a = setup(refuse=True)
    store.put({"id": "u1", "cards": [1]})
    before = counted("denials_not_journaled")
    assert await a.present("front", "card", card=1) == (False, "u1", "not_journaled")
    assert unlocked_levels(board) == 0
    assert counted("denials_not_journaled") == before + 1


async def test_an_unknown_door_is_a_denial_not_a_crash():
    board, store, a = setup()
    store.put({"id": "u1", "cards": [1]})
    assert await a.present("garage", "card", card=1) == (False, None, "unknown_door")


async def test_a_cloud_that_decides_is_asked_first_and_a_silent_one_is_not_waited_for():
    import asyncio
    board, store, a = setup(cloud_decides_ms=5000)   # a cloud that answers is never cut short
    store.put({"id": "u1", "cards": [1]})
    asked = []

    async def says(verdict):
        async def ask(door, source, credential, uid):
            asked.append((door, credential, uid))
            if verdict is None:
                await asyncio.sleep(5)
            return verdict
        return ask

    a.ask_cloud = await says(False)
    assert await a.present("front", "card", card=1) == (False, "u1", "cloud_denied")
    a.ask_cloud = await says(True)
    assert await a.present("front", "card", card=99) == (True, None, None)   # a user only the cloud knows
    a.ask_cloud = await says(None)
    a.cfg["cloud_decides_ms"] = 50
    assert await a.present("front", "card", card=1) == (True, "u1", None)   # the local decision
    assert await a.present("front", "card", card=98) == (False, None, "unknown_card")
    assert asked == [("front", "1", "u1"), ("front", "99", None), ("front", "1", "u1"), ("front", "98", None)]
    sources = [p["source"] for n, p in board.events.take() if n == "unlocked"]
    assert sources == ["cloud_access", "card"]
