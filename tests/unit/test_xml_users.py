# The XML biometric protocol's user operations and door status: what a
# terminal server sends becomes the Thing's user commands, the answers
# carry the vendor's tags (never a PIN), and hostile values are answered
# Fail with the tag named, never run.
from agent.codecs import xml_bio as codec
from agent.codecs import xml_flat
from agent.codecs.session import Command


def _registered(gmt=0, max_frame=16384):
    s = codec.Session("FK628001", "cloud_001", max_frame=max_frame, gmt=gmt)
    s.hello()
    s.receive("<Response><Result>success</Result><Session>s1</Session></Response>")
    return s


def _req(op, tags=""):
    return "<Request><Operation>%s</Operation>%s<TransID>t1</TransID></Request>" % (op, tags)


def _answer(text):
    root, fields = xml_flat.decode(text)
    assert root == "Response"
    return fields


def _refusal(ev):
    assert ev.name is None, ev
    return ev.payload["error"]


def test_set_user_data_is_a_user_set_with_every_tag_read():
    s = _registered(gmt=8)
    ev = s.receive(_req("SetUserData", "<UserID>1001</UserID><Name>Ann Lee</Name><Privilege>0</Privilege>"
                                       "<Enabled>Yes</Enabled><Card>0012345678</Card><PWD>0042</PWD>"
                                       "<UserPeriod_Used>Yes</UserPeriod_Used>"
                                       "<UserPeriod_Start>2026-01-01T08:00:00</UserPeriod_Start>"
                                       "<UserPeriod_End>2026-12-31T00:00:00+00:00</UserPeriod_End>"))
    # the start is the site's wall clock (GMT+8), an explicit offset names an instant
    assert ev == Command("t1", "user_set", {"user": {"id": "1001", "name": "Ann Lee", "enabled": True,
                                                     "cards": [12345678], "pin": "0042",
                                                     "from": 1767225600, "until": 1798675200}})


def test_absent_tags_keep_and_empty_ones_remove():
    s = _registered()
    assert s.receive(_req("SetUserData", "<UserId>7</UserId><Enabled>no</Enabled>")).payload == {
        "user": {"id": "7", "enabled": False}}
    assert s.receive(_req("SetUserData", "<UserID>7</UserID><Card></Card><PWD/><UserPeriod_Used>No"
                                         "</UserPeriod_Used>")).payload == {
        "user": {"id": "7", "cards": [], "pin": None, "from": None, "until": None}}


def test_get_and_delete_user():
    s = _registered()
    assert s.receive(_req("GetUserData", "<UserID> 7 </UserID>")) == Command("t1", "user_get", {"id": "7"})
    assert s.receive(_req("DeleteUser", "<UserID>7</UserID>")) == Command("t1", "user_delete", {"id": "7"})
    assert s.receive(_req("EmptyUserEnrollmentData")) == Command("t1", "users_clear", {})


def test_get_user_data_answer_carries_the_user_without_its_pin():
    s = _registered(gmt=8)
    user = {"id": "1001", "name": "Ann & Bo", "enabled": False, "cards": [12345678, 99], "pin": True,
            "from": 1767225600}
    got = _answer(s.command_result("t1", "user_get", True, {"user": user}))
    assert got == {"Operation": "GetUserData", "TransID": "t1", "Result": "success", "UserID": "1001",
                   "Name": "Ann & Bo", "Enabled": "No", "Card": "12345678", "UserPeriod_Used": "Yes",
                   "UserPeriod_Start": "2026-01-01T08:00:00"}
    assert "PWD" not in got and "pin" not in got
    refused = _answer(s.command_result("t1", "user_get", False, error="unknown user 5"))
    assert refused["Result"] == "Fail" and refused["Reason"] == "unknown user 5"


def test_user_list_pages_one_user_at_a_time_after_the_last_given():
    s = _registered()
    assert s.receive(_req("GetFirstUserData")) == Command("t1", "user_list", {"count": 1})
    got = _answer(s.command_result("t1", "user_list", True, {"users": [{"id": "3", "name": "C"}], "more": True}))
    assert got["UserID"] == "3" and got["More"] == "Yes" and got["Operation"] == "GetNextUserData"
    assert s.receive(_req("GetNextUserData")) == Command("t1", "user_list", {"count": 1, "after": "3"})
    # the server may name where to continue
    assert s.receive(_req("GetNextUserData", "<UserID>9</UserID>")).payload == {"count": 1, "after": "9"}
    got = _answer(s.command_result("t1", "user_list", True, {"users": [], "more": False}))
    assert got["More"] == "No" and "UserID" not in got
    # a new link starts the list from the first user
    s.close()
    s.hello()
    s.receive("<Response><Result>success</Result><Session>s2</Session></Response>")
    assert s.receive(_req("GetNextUserData")).payload == {"count": 1}


def test_hostile_user_tags_are_answered_fail_with_the_tag_named():
    s = _registered()
    cases = (("<UserID>%s</UserID>" % ("9" * 10240), "UserID is 10240 characters long: at most 32"),
             ("<UserID>7</UserID><Card>12ab</Card>", "Card must be a decimal card number, not '12ab'"),
             ("<UserID>7</UserID><Card>-5</Card>", "Card must be a decimal card number"),
             ("<UserID>7</UserID><Card>%s</Card>" % ("1" * 400), "Card must be a decimal card number"),
             ("<UserID>7</UserID><Card>1099511627776</Card>", "out of range"),
             ("<UserID>7</UserID><Enabled>maybe</Enabled>", "Enabled must be Yes or No, not 'maybe'"),
             ("<UserID>7</UserID><PWD>12</PWD>", "PWD must be 4 to 8 digits"),
             ("<UserID>7</UserID><PWD>12a4</PWD>", "PWD must be 4 to 8 digits"),
             ("<UserID>7</UserID><Name>%s</Name>" % ("n" * 33), "Name is 33 characters long: at most 32"),
             ("<UserID>a&#9;b</UserID>", "UserID holds a control character"),
             ("<UserID>7</UserID><UserPeriod_Used>Yes</UserPeriod_Used>", "without UserPeriod_Start"),
             ("<UserID>7</UserID><UserPeriod_Used>Yes</UserPeriod_Used><UserPeriod_Start>soon</UserPeriod_Start>",
              "UserPeriod_Start is not a readable time"),
             ("<Name>x</Name>", "no UserID"))
    for tags, why in cases:
        ev = s.receive(_req("SetUserData", tags))
        assert ev.id == "t1" and ev.payload["answer_as"] == "SetUserData", tags[:40]
        assert why in _refusal(ev), (tags[:40], ev.payload["error"])
    assert "no UserID" in _refusal(s.receive(_req("GetUserData")))
    # the refusal is answered like any failed command: Fail, with the reason
    got = _answer(s.command_result("t1", "SetUserData", False, error="SetUserData refused: no UserID"))
    assert got == {"Operation": "SetUserData", "TransID": "t1", "Result": "Fail",
                   "Reason": "SetUserData refused: no UserID"}


def test_device_status_carries_door_state_and_alarm_flags():
    s = _registered()
    status = {"version": "0.3", "properties": {"front.door": "closed", "front.lock": "locked", "front.alarms": [],
                                               "back.door": "open", "back.lock": "unlocked",
                                               "back.alarms": ["forced", "held_open", "tamper"], "online": True},
              "journal": {"stats": {"evicted": 3}}}
    got = _answer(s.command_result("t1", "status", True, status))
    # a door open anywhere; the alarms of every door: Tamper 2 + IllegalOpen 4 + NoClose 8 + LogOverflow 16
    assert (got["DoorStatus"], got["LockStatus"], got["AlarmStatus"]) == ("open", "unlocked", "30")
    assert got["version"] == "0.3"
    quiet = {"properties": {"front.door": "closed", "front.lock": "locked", "front.alarms": []}}
    got = _answer(s.command_result("t1", "status", True, quiet))
    assert (got["DoorStatus"], got["LockStatus"], got["AlarmStatus"]) == ("closed", "locked", "0")
    # a board without a door says nothing of one
    assert "DoorStatus" not in _answer(s.command_result("t1", "status", True, {"properties": {"online": True}}))


def test_bench_user_requests_read_back_as_the_commands_they_ask_for():
    s = _registered()
    user = {"id": "1001", "name": "Ann", "enabled": True, "cards": [12345678], "pin": "0042",
            "from": 1767225600, "until": None}
    ev = s.receive(codec.server_request("user_set", {"user": user}, "c1"))
    assert ev == Command("c1", "user_set", {"user": {"id": "1001", "name": "Ann", "enabled": True,
                                                     "cards": [12345678], "pin": "0042",
                                                     "from": 1767225600, "until": None}})
    assert s.receive(codec.server_request("user_set", {"users": [{"id": "8", "cards": [], "pin": None}]}, "c2")) == (
        Command("c2", "user_set", {"user": {"id": "8", "cards": [], "pin": None}}))
    for name, payload, expect in (("user_get", {"id": "8"}, {"id": "8"}), ("user_delete", {"id": 8}, {"id": "8"}),
                                  ("users_clear", {}, {}), ("user_list", {}, {"count": 1}),
                                  ("user_list", {"after": "8"}, {"count": 1, "after": "8"})):
        assert s.receive(codec.server_request(name, payload, "c3")) == Command("c3", name, expect), name
    # what SetUserData cannot say: two users, two cards, a schedule
    assert codec.server_request("user_set", {"users": [{"id": "1"}, {"id": "2"}]}, "x") is None
    assert codec.server_request("user_set", {"user": {"id": "1", "cards": [1, 2]}}, "x") is None
    assert codec.server_request("user_set", {"user": {"id": "1", "schedule": [[127, 0, 1440]]}}, "x") is None
    assert codec.server_request("users_sync", {"phase": "begin"}, "x") is None
