from agent.attendance import Attendance
from agent.records import from_thing
from agent.thing import Thing

from support import raises


class Reader:
    on_punch = None
    on_admin = None


def _setup(mode="toggle", gmt=0):
    thing = Thing("t")
    seen = []
    thing.listen(lambda kind, name, value: seen.append((from_thing(kind, name), value)))
    reader = Reader()
    Attendance(thing, reader, gmt=gmt, mode=mode)
    return reader, seen


def test_identified_finger_becomes_a_punch_record():
    reader, seen = _setup(gmt=8)
    reader.on_punch(17, 92)
    kind, rec = seen[0]
    assert kind == "punch"
    assert rec["user"] == "17" and rec["score"] == 92 and rec["action"] == "FP" and rec["gmt"] == 8
    assert len(rec["time"]) == 19 and rec["time"][10] == "T"


def test_toggle_mode_alternates_in_and_out_per_user():
    reader, seen = _setup()
    for user in (1, 1, 2, 1):
        reader.on_punch(user)
    assert [r["attend"] for _, r in seen] == [0, 1, 0, 0]


def test_fixed_modes_and_bad_mode():
    reader, seen = _setup(mode="out")
    reader.on_punch(3)
    reader.on_punch(3)
    assert [r["attend"] for _, r in seen] == [1, 1]
    raises(ValueError, Attendance, Thing("t"), Reader(), 0, "sideways")


def test_enrol_and_delete_become_admin_logs():
    reader, seen = _setup()
    reader.on_admin("enrol", 5)
    reader.on_admin("delete", 5)
    assert [(k, r["action"], r["user"]) for k, r in seen] == [
        ("admin_log", "EnrollFP", "5"), ("admin_log", "DeleteFP", "5")]
