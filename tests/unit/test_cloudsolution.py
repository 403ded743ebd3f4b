from agent.codecs import cloudsolution as cs
from support import raises

SN = "ZX12345678"
T0 = 1781255730  # a journal record's epoch time: 2026-06-12T09:15:30 UTC


def test_carries_punches_and_events():
    assert cs.CARRIES == ("punch", "event")


def test_reg_and_checklive_are_the_seeds():
    devinfo = {"modelname": "tfs30", "usersize": 3000, "fpsize": 3000,
               "firmware": "th600wv6.1", "mac": "00-01-A9-01-00-01"}
    assert cs.reg(SN, "123456789", devinfo) == {
        "cmd": "reg", "sn": SN, "cpusn": "123456789", "devinfo": devinfo}
    assert cs.checklive(SN, "2026-06-12T09:30:00") == {
        "cmd": "checklive", "sn": SN, "time": "2026-06-12T09:30:00"}


def test_sendlog_punches_match_the_seed():
    recs = [
        [10, T0, "punch", "1", {"user": "1", "time": "2026-06-12T09:15:30", "action": "FP",
                                "attend": 0, "temp": 36.5}],
        [11, T0, "punch", "2", {"user": "2", "time": "2026-06-12T09:20:15", "action": "Card",
                                "attend": 1, "temp": 36.8}],
    ]
    assert cs.sendlog(SN, recs) == {
        "cmd": "sendlog", "sn": SN, "count": 2, "logindex": 10,
        "record": [
            {"enrollid": 1, "time": "2026-06-12T09:15:30", "mode": 1, "inout": 0, "event": 0, "temp": 36.5},
            {"enrollid": 2, "time": "2026-06-12T09:20:15", "mode": 0, "inout": 1, "event": 0, "temp": 36.8},
        ]}


def test_punch_with_a_non_numeric_user_and_no_extras():
    r = cs.record([3, T0, "punch", "EMP123", {"user": "EMP123", "time": "2026-06-12T09:00:00"}])
    assert r == {"enrollid": "EMP123", "time": "2026-06-12T09:00:00", "mode": 0, "inout": 0, "event": 0}


def test_door_events_carry_their_codes_and_local_time():
    names = ("door_closed", "door_opened", "exit_button", "door_unlocked", "door_locked",
             "forced_open", "tamper", "alarm")
    for code, name in enumerate(names):
        r = cs.record([5, T0 + code, "event", name, {"door": "front"}])
        assert r == {"enrollid": 0, "time": "2026-06-12T09:15:3%d" % code, "mode": 0, "inout": 0,
                     "event": code}, name
    # the site's wall clock: GMT+8
    assert cs.record([5, T0, "event", "door_opened", {}], 8)["time"] == "2026-06-12T17:15:30"
    assert cs.sendlog(SN, [[5, T0, "event", "door_opened", {}]], gmt=-5)["record"][0]["time"] == (
        "2026-06-12T04:15:30")


def test_punch_without_a_time_gets_the_records_local_time():
    r = cs.record([3, T0, "punch", "punch", {"user": "9", "gmt": 2}])
    assert r["time"] == "2026-06-12T11:15:30" and r["enrollid"] == 9


def test_other_records_are_not_carried():
    for rec in ([1, T0, "event", "journal_evicted", {}], [2, T0, "telemetry", "climate", {"t": 1}],
                [3, T0, "admin", "EnrollFP", {}], [4, T0, "event", "command_result", {}]):
        assert cs.record(rec) is None and not cs.carried(rec)
    assert cs.carried([5, T0, "event", "door_opened", {}])


def test_sendlog_refuses_gaps_and_uncarried_records():
    door = [7, T0, "event", "door_opened", {}]
    e = raises(ValueError, cs.sendlog, SN, [door, [9, T0, "event", "door_closed", {}]])
    assert "consecutive" in str(e)
    e = raises(ValueError, cs.sendlog, SN, [door, [8, T0, "telemetry", "climate", {}]])
    assert "not carried" in str(e)
    raises(ValueError, cs.sendlog, SN, [])
    assert cs.sendlog(SN, [door])["logindex"] == 7


def test_parse_the_seeds_replies():
    r = cs.parse_reply({"ret": "reg", "result": True, "cloudtime": "2026-06-12T10:30:00Z",
                        "nosenduser": True}, "reg")
    assert r["ok"] and r["ret"] == "reg" and r["nosenduser"] is True
    assert r["cloudtime"] == 1781260200 and r["pending_cmd"] is None and r["reason"] is None
    r = cs.parse_reply({"ret": "sendlog", "result": True, "count": 2, "cloudtime": "2026-06-12T09:25:00Z",
                        "access": 1}, "sendlog")
    assert r["count"] == 2 and r["access"] == 1 and r["logindex"] is None
    r = cs.parse_reply({"ret": "checklive", "result": True, "cloudtime": "2026-06-12T09:30:15Z"}, "checklive")
    assert r["ok"] and r["access"] is None and r["count"] is None


def test_cmd_echo_is_accepted_as_ret():
    r = cs.parse_reply({"cmd": "sendlog", "result": False, "reason": "busy"}, "sendlog")
    assert not r["ok"] and r["ret"] == "sendlog" and r["reason"] == "busy"


def test_pending_server_command():
    r = cs.parse_reply({"ret": "sendlog", "result": True, "count": 1, "cmd": "getnewlog", "stn": True},
                       "sendlog")
    assert r["ok"] and r["pending_cmd"] == {"cmd": "getnewlog", "stn": True}
    r = cs.parse_reply({"ret": "checklive", "result": True, "cmd": {"cmd": "opendoor", "doornum": 1}},
                       "checklive")
    assert r["pending_cmd"] == {"cmd": "opendoor", "doornum": 1}
    r = cs.parse_reply({"ret": "reg", "cmd": "reg", "result": True}, "reg")
    assert r["pending_cmd"] is None


def test_garbage_replies():
    for obj, words in (([1, 2], "not a JSON object"), ("ok", "not a JSON object"), (None, "not a JSON object"),
                       ({"result": True}, "names no command"),
                       ({"ret": "reg", "result": True}, "expected sendlog"),
                       ({"cmd": "checklive", "result": True}, "expected sendlog"),
                       ({"ret": "sendlog"}, "no 'result'"),
                       ({"ret": "sendlog", "result": "yes"}, "non-boolean")):
        e = raises(cs.ProtocolError, cs.parse_reply, obj, "sendlog")
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
    for bad in (None, 1781260200, "", "2026-06-12", "2026/06/12T10:30:00", "2026-13-12T10:30:00",
                "2026-06-12T25:30:00", "2026-06-12X10:30:00", "2026-06-12T10:30:00+08:00",
                "abcd-06-12T10:30:00"):
        assert cs.cloudtime(bad) is None, bad
    r = cs.parse_reply({"ret": "reg", "result": True, "cloudtime": "soon"}, "reg")
    assert r["cloudtime"] is None
    r = cs.parse_reply({"ret": "reg", "result": True, "cloudtime": "2026-06-12 18:30:00"}, "reg", gmt=8)
    assert r["cloudtime"] == 1781260200
