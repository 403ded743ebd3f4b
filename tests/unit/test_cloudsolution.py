from agent.codecs import cloudsolution as cs
from agent.codecs.session import Command, LocalProtocolError

from support import raises

SN = "ZX12345678"
T0 = 1781255730  # a journal record's epoch time: 2026-06-12T09:15:30 UTC


def _session(gmt=0, devinfo=None):
    return cs.Session(SN, gmt, devinfo)


def _registered(gmt=0):
    s = _session(gmt)
    s.hello()
    assert s.reply("reg", {"ret": "reg", "result": True}).ok
    return s


def sendlog(recs, gmt=0):
    return _registered(gmt).sendlog(recs)


def test_carries_punches_and_door_events():
    s = _session()
    assert cs.Session.CARRIES == ("punch", "event")
    assert s.carries("punch", None) and s.carries("event", "door_opened") and s.carries("event", "door_tamper")
    assert not s.carries("event", "journal_evicted") and not s.carries("telemetry", None)
    assert not s.carries("admin_log", None)


def test_reg_and_checklive_are_the_documented_ones():
    devinfo = {"modelname": "tfs30", "usersize": 3000, "fpsize": 3000,
               "firmware": "th600wv6.1", "mac": "00-01-A9-01-00-01"}
    s = _session(devinfo=devinfo)
    assert s.hello() == {"cmd": "reg", "sn": SN, "cpusn": SN, "devinfo": devinfo}
    s.reply("reg", {"ret": "reg", "result": True})
    assert s.ping(T0 + 870) == {
        "cmd": "checklive", "sn": SN, "time": "2026-06-12T09:30:00"}


def test_every_request_carries_the_token_when_there_is_one():
    # The server tells the device from anyone who knows its serial number by
    # the token beside `sn`; without one (the protocol's own devices) none.
    s = cs.Session(SN, 0, {"modelname": "m"}, "tok_site")
    assert s.hello() == {"cmd": "reg", "sn": SN, "cpusn": SN, "devinfo": {"modelname": "m"}, "token": "tok_site"}
    s.reply("reg", {"ret": "reg", "result": True})
    assert s.ping(T0)["token"] == "tok_site"
    assert s.sendlog([[1, T0, "punch", "1", {"user": "1", "time": "2026-06-12T09:15:30"}]])["token"] == "tok_site"
    assert s.command_result("opendoor", "unlock", True, {"token": "evil"})["token"] == "tok_site"
    assert s.command_result("x", "x", False, error="no")["token"] == "tok_site"
    assert "token" not in _registered().ping(T0)


def test_sendlog_punches_match_the_document():
    recs = [
        [10, T0, "punch", "1", {"user": "1", "time": "2026-06-12T09:15:30", "action": "FP",
                                "attend": 0, "temp": 36.5}],
        [11, T0, "punch", "2", {"user": "2", "time": "2026-06-12T09:20:15", "action": "Card",
                                "attend": 1, "temp": 36.8}],
    ]
    assert sendlog(recs) == {
        "cmd": "sendlog", "sn": SN, "count": 2, "logindex": 10,
        "record": [
            {"enrollid": 1, "time": "2026-06-12T09:15:30", "mode": 1, "inout": 0, "event": 0, "temp": 36.5},
            {"enrollid": 2, "time": "2026-06-12T09:20:15", "mode": 0, "inout": 1, "event": 0, "temp": 36.8},
        ]}


def test_punch_with_a_non_numeric_user_and_no_extras():
    r = cs.record([3, T0, "punch", "EMP123", {"user": "EMP123", "time": "2026-06-12T09:00:00"}])
    assert r == {"enrollid": "EMP123", "time": "2026-06-12T09:00:00", "mode": 0, "inout": 0, "event": 0}


def test_door_events_carry_their_codes_and_local_time():
    names = ("door_closed", "door_opened", "rex", "unlocked", "locked",
             "door_forced", "door_tamper", "door_held_open")
    for code, name in enumerate(names):
        r = cs.record([5, T0 + code, "event", name, {"door": "front"}])
        assert r == {"enrollid": 0, "time": "2026-06-12T09:15:3%d" % code, "mode": 0, "inout": 0,
                     "event": code}, name
    # the site's wall clock: GMT+8
    assert cs.record([5, T0, "event", "door_opened", {}], 8)["time"] == "2026-06-12T17:15:30"
    assert sendlog([[5, T0, "event", "door_opened", {}]], gmt=-5)["record"][0]["time"] == (
        "2026-06-12T04:15:30")


def test_punch_without_a_time_gets_the_records_local_time():
    r = cs.record([3, T0, "punch", "punch", {"user": "9", "gmt": 2}])
    assert r["time"] == "2026-06-12T11:15:30" and r["enrollid"] == 9


def test_other_records_are_not_carried():
    for rec in ([1, T0, "event", "journal_evicted", {}], [2, T0, "telemetry", "climate", {"t": 1}],
                [3, T0, "admin_log", None, {}], [4, T0, "event", "command_result", {}]):
        assert cs.record(rec) is None
    assert cs.record([5, T0, "event", "door_opened", {}]) is not None


def test_sendlog_refuses_gaps_and_uncarried_records():
    door = [7, T0, "event", "door_opened", {}]
    s = _registered()
    e = raises(ValueError, s.sendlog, [door, [9, T0, "event", "door_closed", {}]])
    assert "consecutive" in str(e)
    e = raises(ValueError, s.sendlog, [door, [8, T0, "telemetry", "climate", {}]])
    assert "not carried" in str(e)
    raises(ValueError, s.sendlog, [])
    assert s.sendlog([door])["logindex"] == 7


def test_parse_the_documented_replies():
    r = cs.parse_reply({"ret": "reg", "result": True, "cloudtime": "2026-06-12T10:30:00Z",
                        "nosenduser": True}, "reg")
    assert r.ok and r.nosenduser is True
    assert r.cloudtime == 1781260200 and r.command is None and r.reason is None
    r = cs.parse_reply({"ret": "sendlog", "result": True, "count": 2, "cloudtime": "2026-06-12T09:25:00Z",
                        "access": 1}, "sendlog")
    assert r.count == 2 and r.access == 1 and r.logindex is None
    r = cs.parse_reply({"ret": "checklive", "result": True, "cloudtime": "2026-06-12T09:30:15Z"}, "checklive")
    assert r.ok and r.access is None and r.count is None


def test_cmd_echo_is_accepted_as_ret():
    r = cs.parse_reply({"cmd": "sendlog", "result": False, "reason": "busy"}, "sendlog")
    assert not r.ok and r.reason == "busy"


def test_pending_server_command():
    r = cs.parse_reply({"ret": "sendlog", "result": True, "count": 1, "cmd": "getnewlog", "stn": True},
                       "sendlog")
    assert r.ok and r.count == 1 and r.command == Command("getnewlog", "resend", {})
    r = cs.parse_reply({"ret": "checklive", "result": True, "cmd": {"cmd": "opendoor", "doornum": 1}},
                       "checklive")
    assert r.command == Command("opendoor", "unlock", {"source": "cloud", "door": 1})
    r = cs.parse_reply({"ret": "reg", "cmd": "reg", "result": True}, "reg")
    assert r.command is None


def test_server_commands_map_to_thing_commands():
    def cmd(obj, gmt=0):
        return cs.parse_reply({"ret": "checklive", "result": True, "cmd": obj}, "checklive", gmt).command
    assert cmd({"cmd": "reboot"}) == Command("reboot", "reboot", {})
    assert cmd({"cmd": "gettime"}) == Command("gettime", "get_time", {})
    assert cmd({"cmd": "settime", "cloudtime": "2026-06-12T10:30:00Z"}, 8) == Command(
        "settime", "set_time", {"epoch": 1781260200})
    assert cmd({"cmd": "settime", "time": "2026-06-12 18:30:00"}, 8).payload == {"epoch": 1781260200}
    bad = cmd({"cmd": "settime", "cloudtime": "soon"})
    assert bad.id == "settime" and bad.name is None and "cloudtime" in bad.payload["error"]
    # a word this device has no meaning for: answered, not run
    assert cmd({"cmd": "getalllog", "stn": True}) == Command("getalllog", None, {})
    assert cmd({"stn": True}).id == "?"


def test_server_commands_written_by_the_bench_read_back():
    # The bench writes with command_request(); the device reads with the
    # same table: every command that has a word survives the round trip.
    for name, payload, expect in (("unlock", {}, {"source": "cloud", "door": 1}), ("reboot", {}, {}),
                                  ("get_time", {}, {}), ("resend", {}, {}),
                                  ("set_time", {"time": "2026-06-12 10:30:00"}, {"epoch": 1781260200})):
        obj = cs.command_request(name, payload)
        got = cs.parse_reply({"ret": "checklive", "result": True, "cmd": obj}, "checklive").command
        assert got.name == name and got.payload == expect, name
    assert cs.command_request("enrol", {"user": 1}) is None
    assert cs.command_request("set_time", {"time": "later"}) is None
    # an instant travels as UTC with a Z (devices honour it), a bare wall time as it is
    assert cs.command_request("set_time", {"epoch": 1781260200}) == {"cmd": "settime",
                                                                     "cloudtime": "2026-06-12T10:30:00Z"}
    assert cs.command_request("set_time", {"time": "2026-06-12T18:30:00+08:00"})["cloudtime"] == (
        "2026-06-12T10:30:00Z")
    assert cs.command_request("set_time", {"time": "2026-06-12 18:30"}) is None
    for bad in (-5, 10 ** 18, 1763900000000):  # negative, absurd, milliseconds
        assert cs.command_request("set_time", {"epoch": bad}) is None, bad


def test_flat_settime_takes_the_replys_cloudtime():
    r = cs.parse_reply({"ret": "checklive", "result": True, "cmd": "settime", "cloudtime": "2026-06-12T10:30:00Z"},
                       "checklive")
    assert r.command == Command("settime", "set_time", {"epoch": 1781260200}) and r.cloudtime == 1781260200


def test_command_results_answer_the_word():
    s = _registered()
    assert s.command_result("opendoor", "unlock", True, {"lock": "unlocked", "duration_ms": 3000,
                                                         "nested": {"x": 1}}) == {
        "ret": "opendoor", "sn": SN, "result": True, "lock": "unlocked", "duration_ms": 3000}
    assert s.command_result("getalllog", "getalllog", False, error="not supported") == {
        "ret": "getalllog", "sn": SN, "result": False, "reason": "not supported"}
    # the device's own fields are never overwritten by a result's
    assert s.command_result("gettime", "get_time", True, {"sn": "evil", "result": False})["result"] is True


def test_states_refuse_our_own_misuse():
    s = _session()
    raises(LocalProtocolError, s.ping, T0)
    s.hello()
    raises(LocalProtocolError, s.sendlog, [[1, T0, "punch", None, {"user": "1"}]])
    raises(LocalProtocolError, s.command_result, "reboot", "reboot", True)
    raises(LocalProtocolError, s.hello)
    assert not s.reply("reg", {"ret": "reg", "result": False, "reason": "unknown device"}).ok
    assert s.state == "connecting"
    assert s.reply("reg", {"ret": "reg", "result": True}).ok and s.state == "registered"
    s.close()
    raises(LocalProtocolError, s.ping, T0)


def test_garbage_replies():
    for obj, words in (([1, 2], "not a JSON object"), ("ok", "not a JSON object"), (None, "not a JSON object"),
                       ({"result": True}, "names no command"),
                       ({"ret": "reg", "result": True}, "expected sendlog"),
                       ({"cmd": "checklive", "result": True}, "expected sendlog"),
                       ({"ret": "sendlog"}, "no 'result'"),
                       ({"ret": "sendlog", "result": "yes"}, "non-boolean")):
        e = raises(cs.RemoteProtocolError, cs.parse_reply, obj, "sendlog")
        assert words in str(e), (obj, str(e))
    assert isinstance(e, ValueError)


def test_acked_upto():
    def rep(**kw):
        obj = {"ret": "sendlog", "result": True}
        obj.update(kw)
        return cs.parse_reply(obj, "sendlog")
    assert cs.acked_upto(rep(count=3), 10, 3) == 12
    assert cs.acked_upto(rep(count=2), 10, 3) == 11       # partial
    assert cs.acked_upto(rep(count=9), 10, 3) == 12       # never more than sent
    assert cs.acked_upto(rep(), 10, 3) == 12              # no count: the whole batch
    assert cs.acked_upto(rep(count=0), 10, 3) is None
    assert cs.acked_upto(rep(count=3, logindex=10), 10, 3) == 12
    assert cs.acked_upto(rep(count=3, logindex=7), 10, 3) is None   # another batch's reply
    assert cs.acked_upto(rep(result=False, count=3), 10, 3) is None


def test_cloudtime_variants():
    assert cs.cloudtime("2026-06-12T10:30:00Z") == 1781260200
    assert cs.cloudtime("2026-06-12T10:30:00") == 1781260200
    assert cs.cloudtime("2026-06-12 10:30:00") == 1781260200
    assert cs.cloudtime("2026-06-12T10:30:00.250Z") == 1781260200
    assert cs.cloudtime("1970-01-01T00:00:00") == 0
    assert cs.cloudtime("2000-02-29T23:59:59") == 951868799
    # Z is UTC; a zone-less time is the site's wall clock
    assert cs.cloudtime("2026-06-12T10:30:00Z", 8) == 1781260200
    assert cs.cloudtime("2026-06-12T18:30:00", 8) == 1781260200
    # one lenient reader: odd separators read; a stated zone is honoured
    assert cs.cloudtime("2026/06/12T10:30:00") == 1781260200
    assert cs.cloudtime("2026-06-12T18:30:00+08:00") == 1781260200
    for bad in (None, 1781260200, "", "2026-06-12", "2026-13-12T10:30:00",
                "2026-06-12T25:30:00", "abcd-06-12T10:30:00"):
        assert cs.cloudtime(bad) is None, bad
    r = cs.parse_reply({"ret": "reg", "result": True, "cloudtime": "soon"}, "reg")
    assert r.cloudtime is None
    r = cs.parse_reply({"ret": "reg", "result": True, "cloudtime": "2026-06-12 18:30:00"}, "reg", gmt=8)
    assert r.cloudtime == 1781260200


def test_an_unreadable_count_is_never_all_of_them():
    # Read as "all taken", it would drop records the server never stored.
    def rep(count):
        return cs.parse_reply({"ret": "sendlog", "result": True, "count": count}, "sendlog")
    assert rep(3.0).count == 3 and rep("2").count == 2 and rep(None).count is None
    for bad in ("none", True, 2.5, -1, "1_0", [3], float("nan")):
        e = raises(cs.RemoteProtocolError, rep, bad)
        assert "unreadable count" in str(e), bad
    # the same for logindex: unreadable is not "absent" (its check would be skipped)
    e = raises(cs.RemoteProtocolError, cs.parse_reply, {"ret": "sendlog", "result": True, "logindex": "x"}, "sendlog")
    assert "unreadable logindex" in str(e)
