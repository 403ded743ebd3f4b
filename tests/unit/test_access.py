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


async def test_card_and_pin_needs_both_and_three_wrong_pins_lock_that_cards_pin_out_at_that_door():
    board, store, a = setup({"name": "front"}, {"name": "back", "relay_pin": 20, "sensor_pin": 21},
                            pin_attempts=3, pin_lockout_s=60)
    store.put({"id": "u1", "cards": [77], "pin": PIN})
    store.put({"id": "u2", "cards": [78], "pin": "135790"})
    assert (await a.present("front", "card_pin", card=77, pin="000000"))[2] == "wrong_pin"
    assert (await a.present("front", "card_pin", card=77, pin="111111"))[2] == "wrong_pin"
    before = counted("pin_lockouts")
    assert (await a.present("front", "card_pin", card=77, pin="222222"))[2] == "wrong_pin"
    assert counted("pin_lockouts") == before + 1
    # Locked out: even the right PIN is refused with that card there, without being tried.
    assert await a.present("front", "card_pin", card=77, pin=PIN) == (False, None, "pin_locked_out")
    assert await a.present("front", "card", card=77) == (True, "u1", None)   # a card alone is no PIN
    assert await a.present("back", "card_pin", card=77, pin=PIN) == (True, "u1", None)
    # One person's wrong PINs do not shut the door to everyone else's card and PIN.
    assert await a.present("front", "card_pin", card=78, pin="135790") == (True, "u2", None)
    a.ticks.wait(59999)
    assert (await a.present("front", "card_pin", card=77, pin=PIN))[2] == "pin_locked_out"
    a.ticks.wait(1)
    assert await a.present("front", "card_pin", card=77, pin=PIN) == (True, "u1", None)
    for _, payload in board.events.take():
        assert PIN not in repr(payload) and "000000" not in repr(payload) and "pin" not in payload


async def test_a_right_pin_with_its_card_starts_that_cards_count_again():
    board, store, a = setup(pin_attempts=3)
    store.put({"id": "u1", "cards": [5], "pin": PIN})
    for _ in range(4):
        assert (await a.present("front", "card_pin", card=5, pin="999999"))[2] == "wrong_pin"
        assert (await a.present("front", "card_pin", card=5, pin="999998"))[2] == "wrong_pin"
        assert (await a.present("front", "card_pin", card=5, pin=PIN))[0] is True


async def test_no_pin_the_store_holds_resets_the_count_of_wrong_pins_alone():
    # The red team's lockout bypass: a disabled user's PIN (or the guesser's
    # own) between guesses kept the count below the lockout for ever.
    board, store, a = setup(pin_attempts=3, pin_lockout_s=60)
    store.put({"id": "victim", "pin": "7391"})
    store.put({"id": "ex", "pin": "1111", "enabled": False})
    store.put({"id": "guesser", "pin": "2468"})
    assert (await a.present("front", "pin", pin="0000"))[2] == "unknown_pin"
    assert await a.present("front", "pin", pin="1111") == (False, "ex", "disabled")
    assert (await a.present("front", "pin", pin="0001"))[2] == "unknown_pin"
    assert await a.present("front", "pin", pin="2468") == (True, "guesser", None)
    assert (await a.present("front", "pin", pin="0002"))[2] == "unknown_pin"
    assert await a.present("front", "pin", pin="7391") == (False, None, "pin_locked_out")
    assert unlocked_levels(board) == 1   # the guesser's own grant, nothing more


async def test_wrong_pins_alone_are_forgotten_a_lockout_time_after_the_last():
    board, store, a = setup(pin_attempts=3, pin_lockout_s=60)
    store.put({"id": "u1", "pin": PIN})
    assert (await a.present("front", "pin", pin="000000"))[2] == "unknown_pin"
    a.ticks.wait(59999)
    assert (await a.present("front", "pin", pin="000001"))[2] == "unknown_pin"
    a.ticks.wait(60000)   # a typo a minute ago and another long before: no run of guesses
    assert (await a.present("front", "pin", pin="000002"))[2] == "unknown_pin"
    assert await a.present("front", "pin", pin=PIN) == (True, "u1", None)
    assert (await a.present("front", "pin", pin="000003"))[2] == "unknown_pin"
    assert (await a.present("front", "pin", pin="000004"))[2] == "unknown_pin"
    assert (await a.present("front", "pin", pin=PIN))[2] == "pin_locked_out"


async def test_wrong_pins_on_many_cards_at_once_cannot_wear_out_the_count_of_one():
    from agent.access.lockout import SLOTS
    board, store, a = setup(pin_attempts=3, pin_lockout_s=60)
    for i in range(1, SLOTS + 5):
        store.put({"id": "u%d" % i, "cards": [i], "pin": "%04d" % (1000 + i)})
    assert (await a.present("front", "card_pin", card=1, pin="0000"))[2] == "wrong_pin"
    assert (await a.present("front", "card_pin", card=1, pin="0000"))[2] == "wrong_pin"
    for i in range(2, SLOTS + 2):   # the table's other slots, and one more
        assert (await a.present("front", "card_pin", card=i, pin="0000"))[2] == "wrong_pin"
    assert (await a.present("front", "card_pin", card=1, pin="0000"))[2] == "wrong_pin"
    assert await a.present("front", "card_pin", card=1, pin="1001") == (False, None, "pin_locked_out")
    # With the table full, cards beyond it count together: the door's cards lock out.
    for i in (SLOTS + 2, SLOTS + 3):
        assert (await a.present("front", "card_pin", card=i, pin="0000"))[2] == "wrong_pin"
    assert (await a.present("front", "card_pin", card=SLOTS + 4, pin="%04d" % (1000 + SLOTS + 4)))[2] \
        == "pin_locked_out"
    assert (await a.present("front", "card", card=SLOTS + 4))[0] is True


async def test_card_number_zero_is_no_credential_even_in_a_store_written_before_that_rule():
    from agent.access import changes
    board, store, a = setup()
    rec = changes.check({"id": "bob", "cards": [5]}, store.salt)
    rec[2] = [0]   # how a store before the rule kept a cloud's "Card 0"
    changes._change(store, "bob", rec, 1, True)
    assert store.by_card(0)
    assert await a.present("front", "card", card=0) == (False, None, "unknown_card")
    asked = []

    async def ask(door, source, credential, uid):
        asked.append(credential)
        return True
    a.ask_cloud = ask
    a.cfg["cloud_decides_ms"] = 1000   # nor is a cloud that decides asked about it
    assert await a.present("front", "card", card=0) == (False, None, "unknown_card")
    assert asked == [] and unlocked_levels(board) == 0


async def test_a_store_that_cannot_be_opened_denies_every_credential_and_the_doors_run_on():
    from agent.access.controller import make
    from agent.errors import CommandError

    from support import araises, write_json
    log.set_level("error")
    board = Board()
    root = tmpdir()
    blocker = write_json(root, "users", "a file where the store's folder should be")
    cfg = config._check("-", {"path": blocker}, config.ACCESS_FIELDS)
    before = counted("users_store_unavailable")
    a = make(board.thing, {"access": cfg, "journal": {"path": root}}, dict(SITE, device_id="d1"), board.doors)
    assert counted("users_store_unavailable") == before + 1
    assert await a.present("front", "card", card=1) == (False, None, "store_error")
    assert await a.present("front", "pin", pin=PIN) == (False, None, "store_error")
    (name, payload), _ = board.events.take()
    assert name == "access_denied" and payload["reason"] == "store_error"
    e = await araises(CommandError, board.thing.call("user_set", {"user": {"id": "u1", "cards": [1]}}))
    assert "user store cannot be opened" in str(e)
    assert (await board.door().grant("cloud")) > 0   # the door itself works
    assert unlocked_levels(board) == 1
    import os

    os.remove(blocker)   # the flash takes the folder again: no restart needed
    assert await board.thing.call("user_set", {"user": {"id": "u1", "cards": [1]}}) == {"stored": 1, "count": 1}
    assert await a.present("front", "card", card=1) == (True, "u1", None)


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


async def test_a_store_that_cannot_be_written_is_reported_at_start_and_still_decides():
    import os

    from agent.access.controller import make
    log.set_level("error")
    board = Board()
    root = tmpdir()
    cfg = config._check("-", {"path": root + "/users"}, config.ACCESS_FIELDS)
    site = dict(SITE, device_id="d1")
    make(board.thing, {"access": cfg, "journal": {"path": root}}, site, board.doors).store.put(
        {"id": "u1", "cards": [1]})
    os.mkdir(root + "/users/d1/.probe")   # where the probe file goes: nothing can be written there
    before = counted("users_store_unwritable")
    board = Board()
    a = make(board.thing, {"access": cfg, "journal": {"path": root}}, site, board.doors)
    assert counted("users_store_unwritable") == before + 1
    assert await a.present("front", "card", card=1) == (True, "u1", None)
