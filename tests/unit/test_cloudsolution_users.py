# CloudSolution's user and door commands: the server's words become the
# Thing's commands, the answers take the protocol's shape (getuserinfo's
# record, getuserlist's pages), a PIN is never answered, and hostile
# values are answered result false with the field named, never run.
from agent.codecs import cloudsolution as cs
from agent.codecs.session import Command

SN = "ZX12345678"


def _registered():
    s = cs.Session(SN, 8)
    s.hello()
    s.reply("reg", {"ret": "reg", "result": True})
    return s


def _cmd(s, obj):
    """The command riding on a checklive reply."""
    return s.reply("checklive", {"ret": "checklive", "result": True, "cmd": obj}).command


def _refusal(ev):
    assert ev.name is None, ev
    return ev.payload["error"]


def test_setuserinfo_sets_one_credential_at_a_time():
    s = _registered()
    assert _cmd(s, {"cmd": "setuserinfo", "enrollid": 5, "name": "Bo", "backupnum": 11, "admin": 0,
                    "record": 12345678}) == Command("setuserinfo", "user_set", {
                        "user": {"id": "5", "name": "Bo", "cards": [12345678]}})
    # the password is the PIN; text keeps its leading zeros
    assert _cmd(s, {"cmd": "setuserinfo", "enrollid": 5, "backupnum": 10, "record": "0042"}).payload == {
        "user": {"id": "5", "pin": "0042"}}
    # the enable flag (doorlink reads `enable`, as `enflag` of enableuser)
    assert _cmd(s, {"cmd": "setuserinfo", "enrollid": "A7", "name": "Cy", "enable": 0}).payload == {
        "user": {"id": "A7", "name": "Cy", "enabled": False}}


def test_get_delete_enable_clean():
    s = _registered()
    assert _cmd(s, {"cmd": "getuserinfo", "enrollid": 5, "backupnum": 11}) == Command(
        ("getuserinfo", 11), "user_get", {"id": "5"})
    assert _cmd(s, {"cmd": "deleteuser", "enrollid": 5, "backupnum": 13}) == Command(
        "deleteuser", "user_delete", {"id": "5"})
    assert _cmd(s, {"cmd": "deleteuser", "enrollid": 5}).name == "user_delete"
    # one credential: the user stays, without it
    assert _cmd(s, {"cmd": "deleteuser", "enrollid": 5, "backupnum": 10}) == Command(
        "deleteuser", "user_set", {"user": {"id": "5", "pin": None}})
    assert _cmd(s, {"cmd": "deleteuser", "enrollid": 5, "backupnum": 11}).payload == {
        "user": {"id": "5", "cards": []}}
    assert _cmd(s, {"cmd": "deleteuser", "enrollid": 5, "backupnum": 12}).payload == {
        "user": {"id": "5", "fp": None}}
    assert _cmd(s, {"cmd": "enableuser", "enrollid": 5, "enflag": 0}) == Command(
        "enableuser", "user_enable", {"id": "5", "enabled": False})
    assert _cmd(s, {"cmd": "enableuser", "enrollid": 5, "enflag": True}).payload["enabled"] is True
    assert _cmd(s, {"cmd": "cleanuser"}) == Command("cleanuser", "users_clear", {})


def test_getuserinfo_answers_the_card_never_the_pin():
    s = _registered()
    user = {"user": {"id": "5", "name": "Bo", "enabled": True, "cards": [12345678], "pin": True}}
    assert s.command_result(("getuserinfo", 11), "user_get", True, user) == {
        "ret": "getuserinfo", "sn": SN, "result": True, "enrollid": 5, "name": "Bo", "admin": 0, "enable": 1,
        "backupnum": 11, "record": 12345678}
    assert s.command_result(("getuserinfo", None), "user_get", True, user) == {
        "ret": "getuserinfo", "sn": SN, "result": True, "enrollid": 5, "name": "Bo", "admin": 0, "enable": 1}
    pin = s.command_result(("getuserinfo", 10), "user_get", True, user)
    assert pin["result"] is False and "keeps only a hash" in pin["reason"] and "record" not in pin
    finger = s.command_result(("getuserinfo", 0), "user_get", True, user)
    assert finger["result"] is False and "fingerprint templates" in finger["reason"]
    no_card = s.command_result(("getuserinfo", 11), "user_get", True, {"user": {"id": "x1", "name": ""}})
    assert no_card == {"ret": "getuserinfo", "sn": SN, "result": False, "reason": "user x1 has no card"}
    unknown = s.command_result(("getuserinfo", 11), "user_get", False, error="unknown user 9")
    assert unknown == {"ret": "getuserinfo", "sn": SN, "result": False, "reason": "unknown user 9"}


def test_getuserlist_pages_with_stn():
    s = _registered()
    first = _cmd(s, {"cmd": "getuserlist", "stn": True})
    assert first == Command(("getuserlist", True), "user_list", {"count": 16})
    page = {"users": [{"id": "5", "cards": [1], "pin": True, "fp": 3}, {"id": "A7"}], "more": True}
    assert s.command_result(first.id, "user_list", True, page) == {
        "ret": "getuserlist", "sn": SN, "result": True, "count": 4, "from": 0, "to": 1, "record": [
            {"enrollid": 5, "admin": 0, "backupnum": 0}, {"enrollid": 5, "admin": 0, "backupnum": 10},
            {"enrollid": 5, "admin": 0, "backupnum": 11}, {"enrollid": "A7", "admin": 0}]}
    # stn false continues after the last user given
    nxt = _cmd(s, {"cmd": "getuserlist", "stn": False})
    assert nxt.payload == {"count": 16, "after": "A7"}
    end = s.command_result(nxt.id, "user_list", True, {"users": [], "more": False})
    assert (end["count"], end["from"], end["record"]) == (0, 2, [])
    # stn true starts again
    assert _cmd(s, {"cmd": "getuserlist", "stn": True}).payload == {"count": 16}
    assert _cmd(s, {"cmd": "getuserlist"}).payload == {"count": 16}


def test_opendoor_names_the_door_and_setdevlock_its_settings():
    s = _registered()
    # CloudSolution numbers doors: door 1 when it names none
    assert _cmd(s, {"cmd": "opendoor", "doornum": 1}).payload == {"source": "cloud", "door": 1}
    assert _cmd(s, {"cmd": "opendoor"}).payload == {"source": "cloud", "door": 1}
    assert _cmd(s, {"cmd": "opendoor", "doornum": 2, "delay": 5}).payload == {
        "source": "cloud", "door": 2, "duration_ms": 5000}
    assert "doornum must be an integer from 1 to 255" in _refusal(_cmd(s, {"cmd": "opendoor", "doornum": "two"}))
    ev = _cmd(s, {"cmd": "setdevlock", "opendelay": 5, "doorsensor": 1, "alarmdelay": 30, "antpass": 0,
                  "threat": 0})
    assert ev == Command(("setdevlock", "antpass,threat"), "door_settings",
                         {"door": 1, "unlock_ms": 5000, "sensor": "nc", "held_open_s": 30})
    # what was not applied goes back with the answer
    assert s.command_result(ev.id, "door_settings", True, {"unlock_ms": 5000, "sensor": "nc"}) == {
        "ret": "setdevlock", "sn": SN, "result": True, "unlock_ms": 5000, "sensor": "nc",
        "notapplied": "antpass,threat"}
    assert _cmd(s, {"cmd": "setdevlock", "doorsensor": 0, "alarmdelay": 0}).id == ("setdevlock", "alarmdelay")
    assert "doorsensor must be an integer from 0 to 2" in _refusal(_cmd(s, {"cmd": "setdevlock", "doorsensor": 7}))
    assert "nothing this device applies" in _refusal(_cmd(s, {"cmd": "setdevlock", "threat": 1}))


def test_hostile_user_fields_are_refused_with_the_field_named():
    s = _registered()
    cases = (({"enrollid": "9" * 10240, "backupnum": 11, "record": 1}, "enrollid is 10240 characters long"),
             ({"backupnum": 11, "record": 1}, "setuserinfo needs an enrollid"),
             ({"enrollid": [1]}, "enrollid must be a number or text"),
             ({"enrollid": 5, "backupnum": 11, "record": "12ab"}, "record (the card) must be a decimal card number"),
             ({"enrollid": 5, "backupnum": 11, "record": 1.5}, "must be a decimal card number"),
             ({"enrollid": 5, "backupnum": 11, "record": 2 ** 40}, "out of range"),
             ({"enrollid": 5, "backupnum": 11}, "backupnum 11 without its record"),
             ({"enrollid": 5, "backupnum": 10, "record": "12"}, "must be 4 to 8 digits"),
             ({"enrollid": 5, "backupnum": 3, "record": "AAAA"}, "enrol the finger at the reader"),
             ({"enrollid": 5, "backupnum": 50, "record": "AAAA"}, "backupnum 50 is not one of"),
             ({"enrollid": 5, "name": "n" * 33}, "name is 33 characters long"),
             ({"enrollid": 5, "name": 7}, "name must be text"),
             ({"enrollid": 5, "enable": "maybe"}, "enable must be Yes or No, not 'maybe'"))
    for fields, why in cases:
        obj = dict(fields)
        obj["cmd"] = "setuserinfo"
        ev = _cmd(s, obj)
        assert ev.id == "setuserinfo" and why in _refusal(ev), (why, ev)
    assert "enflag must be Yes or No" in _refusal(_cmd(s, {"cmd": "enableuser", "enrollid": 5, "enflag": "maybe"}))
    assert "stn must be true or false" in _refusal(_cmd(s, {"cmd": "getuserlist", "stn": "yes"}))
    # answered like any unrunnable command: result false, with the reason
    ev = _cmd(s, {"cmd": "deleteuser", "enrollid": 5, "backupnum": 99})
    assert s.command_result(ev.id, None, False, error=ev.payload["error"]) == {
        "ret": "deleteuser", "sn": SN, "result": False,
        "reason": "deleteuser refused: backupnum 99 is not one of 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13"}


def test_bench_commands_read_back_as_the_commands_they_ask_for():
    s = _registered()
    cases = (("user_set", {"user": {"id": "5", "name": "Bo", "enabled": True, "cards": [12345678]}},
              {"user": {"id": "5", "name": "Bo", "enabled": True, "cards": [12345678]}}),
             ("user_set", {"users": [{"id": "A7", "pin": "0042"}]}, {"user": {"id": "A7", "pin": "0042"}}),
             ("user_get", {"id": "5"}, {"id": "5"}), ("user_delete", {"id": 5}, {"id": "5"}),
             ("user_enable", {"id": "5", "enabled": False}, {"id": "5", "enabled": False}),
             ("user_list", {}, {"count": 16}), ("users_clear", {}, {}),
             ("unlock", {"door": 2, "duration_ms": 4000}, {"source": "cloud", "door": 2, "duration_ms": 4000}),
             ("door_settings", {"unlock_ms": 4000, "sensor": "no", "held_open_s": 120},
              {"door": 1, "unlock_ms": 4000, "sensor": "no", "held_open_s": 120}))
    for name, payload, expect in cases:
        obj = cs.command_request(name, payload)
        ev = _cmd(s, obj)
        assert ev.name == name and ev.payload == expect, (name, obj, ev)
    # what setuserinfo cannot say in one command
    for user in ({"id": "5", "cards": [1], "pin": "1234"}, {"id": "5", "cards": [1, 2]},
                 {"id": "5", "from": 1767225600}, {"id": "5", "cards": []}):
        assert cs.command_request("user_set", {"user": user}) is None, user
    assert cs.command_request("users_sync", {"phase": "begin"}) is None
    assert cs.command_request("unlock", {"door": "front"}) is None
    assert cs.command_request("unlock", {"duration_ms": 1500}) is None


def test_a_grant_to_a_user_travels_as_that_users_record():
    t = 1781256930   # 2026-06-12T09:35:30Z
    card = cs.record([9, t, "event", "unlocked", {"door": "front", "source": "card", "user": "5",
                                                  "credential": "12345678", "duration_ms": 3000}], 8)
    assert card == {"enrollid": 5, "time": "2026-06-12T17:35:30", "mode": 0, "inout": 0, "event": 0}
    finger = cs.record([9, t, "event", "unlocked", {"door": "front", "source": "fingerprint", "user": "A7"}])
    assert (finger["enrollid"], finger["mode"]) == ("A7", 1)
    # an unlock nobody's credential caused is the door's own code 3
    cloud = cs.record([9, t, "event", "unlocked", {"door": "front", "source": "cloud", "duration_ms": 3000}])
    assert (cloud["enrollid"], cloud["event"]) == (0, 3)


def test_a_user_named_0_is_never_read_as_a_door_event():
    # enrollid 0 means "the door": a punch or grant by user "0" goes as text
    assert cs.record([9, 1781256930, "punch", None, {"user": "0", "time": "2026-06-12T09:35:30"}])["enrollid"] == "0"
    assert cs.record([9, 1781256930, "event", "unlocked", {"source": "pin", "user": "007"}])["enrollid"] == "007"
