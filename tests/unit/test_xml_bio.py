from agent.codecs import xml_bio as codec
from agent.codecs import xml_flat
from agent.codecs.session import (
    NOTHING,
    Ack,
    AuthFailed,
    Command,
    LocalProtocolError,
    Registered,
    Reregister,
    ServerError,
)
from agent.codecs.values import normal_wall

from support import raises


def _s(gmt=0):
    return codec.Session("FK628001", "cloud_001", max_frame=4096, gmt=gmt)


def _fields(text, root="Request"):
    got_root, fields = xml_flat.decode(text)
    assert got_root == root
    return fields


def _registered(gmt=0):
    s = _s(gmt)
    s.hello()
    assert s.receive("<Response><Result>success</Result><Session>sess_1_abc</Session>"
                     "<DeviceSerialNo>FK628001</DeviceSerialNo></Response>") == Registered(True)
    return s


def test_carries_punches_and_admin_logs():
    s = _s()
    assert codec.Session.CARRIES == ("punch", "admin_log")
    assert s.carries("punch", None) and s.carries("admin_log", None)
    assert not s.carries("telemetry", None) and not s.carries("event", "door_opened")


def test_register_request_is_the_documented_one():
    text = _s().hello()
    assert text.startswith("<Request>\n<Operation>Register</Operation>\n")
    assert _fields(text) == {"Operation": "Register", "DeviceSerialNo": "FK628001", "CloudId": "cloud_001",
                             "TerminalType": "doorlink"}


def test_register_success_stores_the_session():
    s = _registered()
    assert s.state == "registered" and s.session == "sess_1_abc"
    # hello() on a new link forgets it.
    s.close()
    s.hello()
    assert s.state == "connecting" and s.session is None


def test_register_response_read_in_either_shape_and_padded():
    s = _s()
    s.hello()
    assert s.receive("<Response>\n<Operation>Register</Operation>\n<Result> OK </Result>\n"
                     "<Session> s1 </Session>\n</Response>") == Registered(True)
    assert s.session == "s1"
    v = _s()
    v.hello()
    assert v.receive('<?xml version="1.0"?><Message><Response>Register</Response><Result>OK</Result>'
                     "<Session>s2</Session></Message>") == Registered(True)


def test_register_refused_is_auth_failed():
    s = _s()
    s.hello()
    assert s.receive("<Response><Result>Fail</Result><Reason>authentication failed for device FK628001"
                     "</Reason></Response>") == AuthFailed("authentication failed for device FK628001")
    assert s.receive("<Response><Operation>Register</Operation><Result>Fail</Result></Response>") == (
        AuthFailed("Fail"))
    assert s.state == "connecting"


def test_punch_record_is_a_documented_timelog():
    s = _registered(gmt=8)
    rec = [42, 1778577330, "punch", "punch", {"user": "EMP123", "time": "2026-05-12T09:15:30"}]
    text = s.record(rec)
    assert text.startswith("<Request>\n<Operation>TimeLog_v2</Operation>\n<LogId>42</LogId>\n")
    assert _fields(text) == {"Operation": "TimeLog_v2", "LogId": "42", "UserId": "EMP123",
                             "PunchTime": "2026-05-12T09:15:30", "GMT": "8", "AttendStat": "0",
                             "APStat": "1", "Action": "FP", "JobCode": "0"}


def test_punch_record_with_every_optional_field():
    value = {"user": "E<1>", "time": "2026-05-12T09:15:30", "gmt": -5, "attend": 2, "ap": 0,
             "action": "Card", "job": 7, "photo": "aGVsbG8=", "lat": 40.7128, "lon": -74.006}
    f = _fields(_registered().record([3, 0, "punch", "punch", value]))
    assert f["UserId"] == "E<1>" and f["GMT"] == "-5" and f["AttendStat"] == "2" and f["APStat"] == "0"
    assert f["Action"] == "Card" and f["JobCode"] == "7" and f["Photo"] == "aGVsbG8="
    assert float(f["Latitude"]) == 40.7128 and float(f["Longitude"]) == -74.006


def test_admin_record_is_a_documented_adminlog():
    value = {"user": "EMP456", "action": "EnrollFP", "time": "2026-05-12T10:30:00"}
    assert _fields(_registered().record([9, 0, "admin_log", None, value])) == {
        "Operation": "AdminLog_v2", "LogId": "9", "AdminId": "ADMIN", "UserId": "EMP456",
        "Action": "EnrollFP", "Time": "2026-05-12T10:30:00"}
    value["admin"] = "A7"
    assert _fields(_registered().record([9, 0, "admin_log", None, value]))["AdminId"] == "A7"
    # a journal written before 0.2 spelled the kind "admin"
    assert _fields(_registered().record([9, 0, "admin", None, value]))["Operation"] == "AdminLog_v2"


def test_other_kinds_are_not_carried_and_incomplete_records_refused():
    s = _registered()
    assert s.record([1, 0, "telemetry", None, {"temperature": 20}]) is None
    assert s.record([2, 0, "event", "door_opened", {}]) is None
    e = raises(ValueError, s.record, [5, 0, "punch", "punch", {"time": "2026-05-12T09:15:30"}])
    assert "record 5" in str(e) and "user" in str(e)
    raises(ValueError, s.record, [6, 0, "admin_log", None, {"user": "u", "time": "t"}])
    raises(ValueError, s.record, [7, 0, "punch", "punch", "not a dict"])
    raises(ValueError, s.record, [8, 0, "punch", "punch", {"user": "u", "time": "t", "gmt": None}])


def test_keepalive_request_and_response():
    s = _registered()
    assert _fields(s.ping()) == {"Operation": "KeepAlive"}
    assert s.receive("<Response><Operation>KeepAlive</Operation><Result>success</Result>"
                     "<ServerTime>2026-05-12T09:15:30</ServerTime></Response>") == NOTHING
    # A documented response naming nothing, without an id: a keepalive answer.
    assert s.receive("<Response><Result>success</Result></Response>") == NOTHING


def test_log_acks_by_logid_or_transid():
    s = _registered()
    assert s.receive("<Response><Result>success</Result><LogId>42</LogId></Response>") == Ack(42)
    assert s.receive("<Response><Operation>AdminLog_v2</Operation><Result>OK</Result>"
                     "<LogId> 43 </LogId></Response>") == Ack(43)
    assert s.receive("<Message><Response> TimeLog_v2 </Response><TransID>44</TransID>"
                     "<Result>OK</Result></Message>") == Ack(44)
    assert s.receive("<Response><Operation>TimeLog_v2</Operation><Result>success</Result>"
                     "<LogId>LOG001</LogId></Response>").counter == "bad_ack"
    no_id = "<Response><Operation>TimeLog_v2</Operation><Result>success</Result></Response>"
    assert s.receive(no_id).counter == "bad_ack"


def test_refused_log_is_server_error_and_holds_later_acks():
    s = _registered()
    assert s.receive("<Response><Result>success</Result><LogId>4</LogId></Response>") == Ack(4)
    ev = s.receive("<Response><Operation>TimeLog_v2</Operation><Result>Fail</Result><LogId>5</LogId>"
                   "<Reason>disk full</Reason></Response>")
    assert type(ev) is ServerError and "5" in ev.reason and "disk full" in ev.reason
    # Acks are cumulative: acknowledging 6 would drop the refused 5.
    assert s.receive("<Response><Result>success</Result><LogId>6</LogId></Response>") == Ack(4)
    # A new link resends everything unacknowledged: the hold is gone.
    s.close()
    s.hello()
    s.receive("<Response><Result>success</Result><Session>x</Session></Response>")
    assert s.receive("<Response><Result>success</Result><LogId>6</LogId></Response>") == Ack(6)


def test_refused_log_without_an_id_holds_the_oldest_unacknowledged():
    s = _registered()
    assert s.receive("<Response><Result>success</Result><LogId>3</LogId></Response>") == Ack(3)
    refused = s.receive("<Response><Operation>TimeLog_v2</Operation><Result>Fail</Result></Response>")
    assert type(refused) is ServerError and refused.records
    assert s.receive("<Response><Result>success</Result><LogId>5</LogId></Response>") == Ack(3)


def test_refused_first_log_holds_every_ack():
    s = _registered()
    s.receive("<Response><Result>Fail</Result><LogId>1</LogId></Response>")
    assert s.receive("<Response><Result>success</Result><LogId>2</LogId></Response>") == NOTHING


def test_unknown_token_means_register_again():
    s = _registered()
    assert s.receive("<Response><Result>FailUnknownToken</Result></Response>") == Reregister("FailUnknownToken")
    assert s.receive("<Message><Response>TimeLog_v2</Response><TransID>3</TransID>"
                     "<Result>FailUnknownToken</Result></Message>").__class__ is Reregister
    ev = s.receive("<Response><Operation>TimeLog_v2</Operation><Result>Fail</Result><LogId>3</LogId>"
                   "<Reason>not registered: send Register first</Reason></Response>")
    assert ev == Reregister("not registered: send Register first")
    assert s.receive("<Response><Operation>KeepAlive</Operation><Result>Fail</Result>"
                     "<Reason>Unknown session</Reason></Response>").__class__ is Reregister


def test_failed_keepalive_is_server_error():
    s = _registered()
    assert s.receive("<Response><Operation>KeepAlive</Operation><Result>Fail</Result>"
                     "<Reason>busy</Reason></Response>") == ServerError("KeepAlive failed: busy", False)


def test_lock_control_commands():
    s = _registered()
    # the protocol names no door: door 1, named (a board with several refuses a guess)
    assert s.receive("<Request><Operation>LockControl</Operation><Mode>1</Mode></Request>") == (
        Command(None, "unlock", {"door": 1}))
    assert s.receive("<Message><Request>LockControl</Request><TransID>77</TransID><Mode> 2 </Mode>"
                     "</Message>") == Command("77", "lock", {"door": 1})
    # 3-6: the door's mode, a restart, the alarm cleared (the protocol names no door: door 1)
    normal_open, normal = {"door": 1, "mode": "normal_open"}, {"door": 1, "mode": "normal"}
    for mode, name, payload in (("3", "door_mode", normal_open), ("4", "door_mode", normal),
                                ("5", "reboot", {}), ("6", "clear_alarm", {"door": 1}),
                                ("NormalOpen", "door_mode", normal_open), ("autorecover", "door_mode", normal),
                                ("Restart", "reboot", {}), ("CancelWarning", "clear_alarm", {"door": 1}),
                                ("ForceOpen", "unlock", {"door": 1})):
        got = s.receive("<Request><Operation>LockControl</Operation><Mode>%s</Mode></Request>" % mode)
        assert got == Command(None, name, payload), mode
    # a mode the protocol does not define is answered Fail
    bad = s.receive("<Request><Operation>LockControl</Operation><Mode>7</Mode><TransID>9</TransID></Request>")
    assert bad.name is None and bad.payload["error"] == "LockControl Mode 7 is not one of 1-6"
    assert s.receive("<Request><Operation>LockControl</Operation><Mode>0</Mode></Request>").name is None
    # A bad request is answered Fail (through the command path), never just ignored.
    bad = s.receive("<Request><Operation>LockControl</Operation><TransID>8</TransID></Request>")
    assert bad.id == "8" and bad.name is None and bad.payload["answer_as"] == "LockControl"
    assert "without a valid Mode" in bad.payload["error"]
    bad = s.receive("<Request><Operation>LockControl</Operation><Mode>wide</Mode></Request>")
    assert bad.name is None and "'wide'" in bad.payload["error"]


def test_status_and_set_time_commands():
    s = _registered()
    assert s.receive("<Request><Operation>GetDeviceStatus</Operation></Request>") == Command(None, "status", {})
    assert s.receive("<Request><Operation>SetTime</Operation><Time>2013-05-06-T11:09:30Z</Time>"
                     "</Request>") == Command(None, "set_time", {"time": "2013-05-06T11:09:30"})
    bad = s.receive("<Request><Operation>SetTime</Operation><Time>soon</Time></Request>")
    assert bad.name is None and bad.payload == {"error": "SetTime without a readable Time", "answer_as": "SetTime"}


def test_terminal_times_are_read_leniently():
    # The one lenient reader (codecs.values) reads what terminals write.
    for text in ("2026-05-12T09:15:30", "2026-05-12 09:15:30", "2026-05-12-T09:15:30Z",
                 " 2026/05/12 09:15:30 ", "20260512091530", "2026-05-12T09:15:30+08:00"):
        assert normal_wall(text) == "2026-05-12T09:15:30", text
    for text in ("", "2026-05-12", "2026-13-12T09:15:30", "2026-05-12T25:00:00", "yesterday"):
        assert normal_wall(text) is None, text


def test_command_results():
    s = _registered()
    assert _fields(s.command_result("77", "unlock", True), "Response") == {
        "Operation": "LockControl", "TransID": "77", "Result": "success"}
    assert _fields(s.command_result(None, "set_time", False, error="clock & RTC broken"), "Response") == {
        "Operation": "SetTime", "Result": "Fail", "Reason": "clock & RTC broken"}
    got = _fields(s.command_result(None, "status", True, {"DoorStatus": "closed", "Alarm": 0, "open": False,
                                                          "bad name": 1, "nested": {"a": 1}}), "Response")
    assert got == {"Operation": "GetDeviceStatus", "Result": "success", "DoorStatus": "closed", "Alarm": "0",
                   "open": "0"}


def test_bad_input_kinds():
    s = _registered()
    assert s.receive(b"<Response/>").counter == "bad_frame"
    assert s.receive("<Response><Result>success</Result>").counter == "bad_xml"
    assert s.receive('{"type": "ping"}').counter == "bad_xml"
    dtd = '<!DOCTYPE r [<!ENTITY a "aaaa">]><Response><Result>&a;</Result></Response>'
    ev = s.receive(dtd)
    assert ev.counter == "bad_xml" and "DTD" in ev.message
    assert s.receive("<Response><Result>&a;</Result></Response>").counter == "bad_xml"
    big = "<Response><Pad>" + "x" * 5000 + "</Pad></Response>"
    ev = s.receive(big)
    assert ev.counter == "oversized_frame" and "4096" in ev.message
    # a request this device has no meaning for is answered Fail, not ignored
    assert s.receive("<Request><Operation>GetFirstGlog</Operation><TransID>9</TransID></Request>") == Command(
        "9", None, {"error": "GetFirstGlog is not supported by this device", "answer_as": "GetFirstGlog"})
    assert _fields(s.command_result("9", "GetFirstGlog", False, error="not supported"), "Response") == {
        "Operation": "GetFirstGlog", "TransID": "9", "Result": "Fail", "Reason": "not supported"}
    assert s.receive("<Request><Operation></Operation></Request>").counter == "unknown_operation"
    mystery = "<Response><Operation>Mystery</Operation><Result>OK</Result></Response>"
    assert s.receive(mystery).counter == "unknown_operation"
    assert s.receive("<Hello/>").counter == "unknown_operation"
    assert s.receive("<Message><Other>x</Other></Message>").counter == "unknown_operation"
    # a log answer without a Result is no success: held, never acked over
    garbled = s.receive("<Response><LogId>1</LogId></Response>")
    assert type(garbled) is ServerError and garbled.records and "without <Result>" in garbled.reason
    assert s.receive("<Response><Operation>KeepAlive</Operation></Response>") == NOTHING
    # Still registered after all that; the garbled answer to log 1 holds its
    # acks until the next link, which sends it again.
    assert s.receive("<Response><Result>success</Result><LogId>2</LogId></Response>") == NOTHING
    s.close()
    s.hello()
    s.receive("<Response><Result>success</Result><Session>s</Session></Response>")
    assert s.receive("<Response><Result>success</Result><LogId>1</LogId></Response>") == Ack(1)


def test_states_refuse_our_own_misuse_and_count_the_peers():
    s = _s()
    raises(LocalProtocolError, s.receive, "<Response><Result>OK</Result></Response>")
    s.hello()
    raises(LocalProtocolError, s.ping)
    raises(LocalProtocolError, s.record, [1, 0, "punch", None, {"user": "1", "time": "t"}])
    raises(LocalProtocolError, s.command_result, "1", "unlock", True)
    # a server command or a log ack before Register is answered: ignored, counted
    assert s.receive("<Request><Operation>LockControl</Operation><Mode>1</Mode></Request>").counter == (
        "unexpected_message")
    assert s.receive("<Response><Operation>TimeLog_v2</Operation><Result>OK</Result>"
                     "<LogId>1</LogId></Response>").counter == "unexpected_message"
    assert s.receive("<Response><Result>OK</Result><Session>s</Session></Response>") == Registered(True)
    assert s.receive("<Response><Operation>Register</Operation><Result>OK</Result></Response>").counter == (
        "unexpected_message")


def test_server_requests_read_back_as_the_commands_they_ask_for():
    # The bench writes commands with server_request(); the device reads them
    # with the same tables: every command survives the round trip.
    s = _registered()
    for name, payload, expect in (("unlock", {}, {"door": 1}), ("lock", {"door": 1}, {"door": 1}),
                                  ("reboot", {}, {}),
                                  ("door_mode", {"mode": "normal_open"}, {"door": 1, "mode": "normal_open"}),
                                  ("door_mode", {"mode": "normal"}, {"door": 1, "mode": "normal"}),
                                  ("clear_alarm", {}, {"door": 1}), ("status", {}, {}),
                                  ("set_time", {"time": "2026-05-12 09:15:30"}, {"time": "2026-05-12T09:15:30"})):
        text = codec.server_request(name, payload, "t-" + name)
        assert s.receive(text) == Command("t-" + name, name, expect), name
    # an admin's raw LockControl mode reads back as the command it is
    assert s.receive(codec.server_request("lock_control", {"mode": 5}, "t")) == Command("t", "reboot", {})
    # what LockControl cannot say: another door, a lockdown
    assert codec.server_request("unlock", {"door": 2}, "x") is None
    assert codec.server_request("door_mode", {"mode": "locked"}, "x") is None
    assert codec.server_request("enrol", {"user": 3}, "x") is None
    assert codec.server_request("set_time", {"time": "soon"}, "x") is None
    assert codec.server_request("lock_control", {"mode": "wide"}, "x") is None


def test_set_time_keeps_an_explicit_offset():
    s = _registered()
    # +08:00 names an instant; a Z on a terminal's time is read as local wall clock
    assert s.receive("<Request><Operation>SetTime</Operation><Time>2026-11-23T09:00:00+08:00</Time>"
                     "</Request>") == Command(None, "set_time", {"epoch": 1795395600})
    assert s.receive("<Request><Operation>SetTime</Operation><Time>2026-11-23T09:00:00Z</Time>"
                     "</Request>").payload == {"time": "2026-11-23T09:00:00"}
    # the bench's side: an instant goes with +00:00, and reads back as the same instant
    text = codec.server_request("set_time", {"epoch": 1795395600}, "t1")
    assert s.receive(text) == Command("t1", "set_time", {"epoch": 1795395600})
    text = codec.server_request("set_time", {"time": "2026-11-23T09:00:00+08:00"}, "t2")
    assert s.receive(text).payload == {"epoch": 1795395600}
    for bad in (-1, 10 ** 18, 1763900000000):  # negative, absurd, milliseconds
        assert codec.server_request("set_time", {"epoch": bad}, "t3") is None, bad


def test_a_grant_to_a_user_is_that_users_timelog_and_other_unlocks_are_not_carried():
    # An access terminal on this protocol logs who came in as their
    # TimeLog_v2 (the protocol has no door events); an unlock by the exit
    # button or the cloud names nobody and has no form here.
    s = _registered(gmt=2)
    assert s.carries("event", "unlocked") and not s.carries("event", "access_denied")
    grant = [43, 1778580000, "event", "unlocked",
             {"door": "front", "source": "card", "user": "1001", "credential": "10012345", "duration_ms": 3000}]
    f = _fields(s.record(grant))
    assert (f["Operation"], f["LogId"], f["UserId"], f["Action"]) == ("TimeLog_v2", "43", "1001", "Card")
    assert (f["PunchTime"], f["GMT"]) == ("2026-05-12T12:00:00", "2")   # 10:00 UTC on the site's wall clock
    assert "10012345" not in s.record(grant)                             # the card number is not the user
    by_pin = [44, 1778580000, "event", "unlocked", {"door": "front", "source": "pin", "user": "1001"}]
    assert _fields(s.record(by_pin))["Action"] == "PWD"
    assert s.record([45, 1778580000, "event", "unlocked", {"door": "front", "source": "rex"}]) is None
