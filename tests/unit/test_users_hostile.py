# Hostile users on both runtimes: every field of a user from the cloud is
# checked for type, size and range before anything is stored, a refusal
# names the field, lists are measured before they are walked, and a
# refused user leaves the store as it was.
from agent.access.check import check
from agent.access.users import UserStore

from support import MICROPYTHON, raises, tmpdir

SALT = b"0123456789abcdef"

BAD = [
    ("not a user", "must be an object"),
    ({}, "needs an 'id'"),
    ({"id": ""}, "id is empty"),
    ({"id": "x" * 33}, "at most 32"),
    ({"id": "a\nb"}, "control character"),
    ({"id": ["u1"]}, "must be a number or text"),
    ({"id": {"nested": {"deeper": 1}}}, "must be a number or text"),
    ({"id": "u", "name": "n" * 1000}, "at most 32"),
    ({"id": "u", "name": 7}, "must be text"),
    ({"id": "u", "name": ["x"] * 3}, "name must be a number or text"),
    ({"id": "u", "cards": 5}, "'cards' must be a list"),
    ({"id": "u", "cards": [1, 2, 3, 4, 5]}, "at most 4"),
    ({"id": "u", "cards": [1 << 40]}, "out of range"),
    ({"id": "u", "cards": [-1]}, "out of range"),
    # A cloud's "no card" as 0 would be a card anyone forges: 26 bits of zeros.
    ({"id": "u", "cards": [0]}, "0 is no card number"),
    ({"id": "u", "cards": ["000"]}, "0 is no card number"),
    ({"id": "u", "cards": [True]}, "card number"),
    ({"id": "u", "cards": [1.5]}, "card number"),
    ({"id": "u", "cards": ["12x"]}, "card number"),
    ({"id": "u", "cards": ["9" * 500]}, "card number"),
    ({"id": "u", "cards": [[[[1]]]]}, "card must be a number or text"),
    ({"id": "u", "cards": [3, 3]}, "listed twice"),
    ({"id": "u", "pin": "12"}, "4 to 8 digits"),
    ({"id": "u", "pin": "123456789"}, "4 to 8 digits"),
    ({"id": "u", "pin": "12a4"}, "4 to 8 digits"),
    ({"id": "u", "pin": 12.5}, "4 to 8 digits"),
    ({"id": "u", "pin": ["1234"]}, "4 to 8 digits"),
    ({"id": "u", "fp": 65536}, "'fp' must be"),
    ({"id": "u", "fp": "7"}, "'fp' must be"),
    ({"id": "u", "enabled": "yes"}, "true or false"),
    ({"id": "u", "enabled": None}, "cannot be null"),
    ({"id": "u", "name": None}, "cannot be null"),
    ({"id": "u", "from": 1.7e9}, "2020-2100"),
    ({"id": "u", "until": 10 ** 18}, "2020-2100"),
    ({"id": "u", "until": "2026-01-01"}, "2020-2100"),
    ({"id": "u", "from": 1800000000, "until": 1700000000}, "before 'until'"),
    ({"id": "u", "schedule": [[1, 0, 60]] * 9}, "at most 8"),
    ({"id": "u", "schedule": [[0, 0, 60]]}, "days_mask"),
    ({"id": "u", "schedule": [[1, 0, 1441]]}, "minutes"),
    ({"id": "u", "schedule": [[1, 0]]}, "entries must be"),
    ({"id": "u", "schedule": [[1] * 100000]}, "entries must be"),
    ({"id": "u", "schedule": "always"}, "must be a list"),
    ({"id": "u", "doors": ["front"] * 9}, "at most 8"),
    ({"id": "u", "doors": [""]}, "door names"),
    ({"id": "u", "doors": [{"door": 1}]}, "door names"),
    ({"id": "u", "doors": ["front door"]}, "door names"),
    ({"id": "u", "doors": ["t\u00fcr"]}, "door names"),
    ({"id": "u", "role": "admin"}, "no field 'role'"),
    (dict({"id": "u"}, **{"f%d" % i: 1 for i in range(20)}), "at most 10 fields"),
]


def test_every_field_is_checked_and_the_refusal_names_it():
    for user, why in BAD:
        e = raises(ValueError, check, user, SALT)
        assert why in str(e), (user, str(e))


def test_a_million_cards_are_refused_by_their_count_before_any_is_looked_at():
    # MicroPython's test heap cannot hold a list of a million: 10,000 make
    # the same point there.
    n = 10 ** 4 if MICROPYTHON else 10 ** 6
    e = raises(ValueError, check, {"id": "u", "cards": [1] * n}, SALT)
    assert "at most 4" in str(e)


def test_a_deeply_nested_value_is_refused_without_recursing_into_it():
    deep = 1
    for _ in range(5000):
        deep = [deep]
    for field in ("cards", "schedule", "doors", "name", "pin", "fp"):
        raises(ValueError, check, {"id": "u", field: deep}, SALT)
    s = UserStore(tmpdir() + "/users/d1")
    raises(ValueError, s.put, {"id": deep})
    raises(ValueError, s.put, {"id": {"a": deep}})
    assert s.count() == 0


def test_a_refused_user_leaves_the_store_as_it_was():
    s = UserStore(tmpdir() + "/users/d1")
    s.put({"id": "u1", "name": "Ann", "cards": [1], "pin": "1234"})
    for user, _ in BAD:
        if isinstance(user, dict) and user.get("id") == "u":
            raises(ValueError, s.put, dict(user, id="u1"))
    s = UserStore(s.folder)
    assert s.count() == 1 and s.get("u1")[1] == "Ann" and len(s.by_pin("1234")) == 1


def test_the_largest_user_fits_the_json_size_user_list_counts_on():
    import json

    from agent.access.controller import USER_JSON_MAX
    from agent.access.record import public
    wide = "\U0001f600" * 32   # JSON escapes each as a surrogate pair: 12 bytes
    rec = check({"id": wide, "name": wide, "cards": [(1 << 40) - 1 - i for i in range(4)], "pin": "12345678",
                 "fp": 65535, "from": 1577836800, "until": 4102444799, "schedule": [[127, 1439, 1440]] * 8,
                 "doors": ["d" * 32] + ["e%031d" % i for i in range(7)],
                 "enabled": False}, SALT)
    assert len(json.dumps(public(rec))) <= USER_JSON_MAX


def test_ids_and_card_numbers_as_the_protocols_write_them_are_taken():
    rec = check({"id": 1234, "cards": ["0012345"], "pin": 9876}, SALT)
    assert rec[0] == "1234" and rec[2] == [12345]
