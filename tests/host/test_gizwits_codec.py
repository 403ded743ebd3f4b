"""The Gizwits app API codec (gizwits_codec.py) without a socket: varLen
(MQTT remaining length) at every boundary both ways, the raw framing, each
client message as the seed document shows it -> its event, each wrong one
-> s2c_invalid_msg's code, and the cloud's messages field by field."""

import json

import pytest

from host_tools.bench import gizwits_codec as gc

# (value, its encoding): both ends of every width, MQTT v3.1's own table
BOUNDARIES = [(0, [0x00]), (1, [0x01]), (127, [0x7F]), (128, [0x80, 0x01]), (16383, [0xFF, 0x7F]),
              (16384, [0x80, 0x80, 0x01]), (2097151, [0xFF, 0xFF, 0x7F]), (2097152, [0x80, 0x80, 0x80, 0x01]),
              (268435455, [0xFF, 0xFF, 0xFF, 0x7F])]


@pytest.mark.parametrize(("n", "encoded"), BOUNDARIES)
def test_varlen_round_trips_at_every_boundary(n, encoded):
    assert list(gc.encode_varlen(n)) == encoded
    assert gc.decode_varlen(bytes(encoded)) == (n, len(encoded))
    assert gc.decode_varlen([9, 9] + encoded + [5], 2) == (n, len(encoded))


def test_varlen_refuses_what_mqtt_cannot_say():
    for bad in (-1, 268435456, True, 1.5):
        with pytest.raises(ValueError, match="varLen"):
            gc.encode_varlen(bad)
    with pytest.raises(ValueError, match="longer than 4"):
        gc.decode_varlen([0x80, 0x80, 0x80, 0x80, 0x01])
    with pytest.raises(ValueError, match="cut short"):
        gc.decode_varlen([0x80, 0x80])


@pytest.mark.parametrize("size", [0, 1, 124, 125, 16380, 16381, 2097148, 2097149])
def test_frames_round_trip_across_varlen_widths(size):
    data = bytes(i & 0xFF for i in range(size))
    framed = gc.frame(gc.CMD_TRANS_REPORT, data)
    width = len(gc.encode_varlen(3 + size))
    assert framed[:4] == [0, 0, 0, 3] and framed[4 + width:7 + width] == [0, 0, 0x91]
    assert gc.decode_varlen(framed, 4) == (3 + size, width)
    assert gc.unframe(framed) == (0x91, data)


def test_unframe_names_what_is_wrong():
    for raw, words in (([0, 0, 0, 2, 3, 0, 0, 0x90], "begin with"), ([0, 0, 0, 3, 4, 0, 0, 0x90], "varLen says 4"),
                       ([0, 0, 0, 3, 3, 1, 0, 0x90], "[0, 0, cmd]"), ([0, 0, 0, 3, 0x80], "cut short")):
        with pytest.raises(ValueError, match=words):
            gc.unframe(raw)


def _codec(p0_type=None):
    c = gc.Codec(256)
    c.logged_in(p0_type)
    return c


def test_the_documents_messages_become_events():
    c = _codec()
    login = c.receive(json.dumps({"cmd": "login_req", "data": {
        "appid": "app", "uid": "u1", "token": "t" * 20, "p0_type": "attrs_v4", "heartbeat_interval": 180,
        "auto_subscribe": False}}))
    assert login == gc.Login("app", "u1", "t" * 20, "attrs_v4", 180, False)
    c.logged_in("attrs_v4")
    assert c.receive('{"cmd": "subscribe_req", "data": [{"did": "d1"}, {"did": "d2/usr5770"}, {"did": 3}]}') == \
        gc.Subscribe(("d1", "d2"), (("", gc.BAD_FIELD, "did must be a non-empty string, got 3"),))
    assert c.receive('{"cmd": "c2s_read", "req_sn": 7, "data": {"did": "d1", "names": ["lock_state"]}}') == \
        gc.Read("d1", ("lock_state",), 7)
    assert c.receive('{"cmd": "c2s_read", "data": {"did": "d1"}}') == gc.Read("d1", None, None)
    assert c.receive('{"cmd": "c2s_write", "req_sn": 8, "data": {"did": "d1", "attrs": {"unlock": true}}}') == \
        gc.Write("d1", {"unlock": True}, 8)
    assert c.receive(json.dumps({"cmd": "c2s_raw", "data": {"did": "d1", "raw": [0, 0, 0, 3, 5, 0, 0, 144, 1, 2]}})) \
        == gc.Raw("d1", 0x90, None, b"\x01\x02")
    raw93 = [0, 0, 0, 3, 8, 0, 0, 0x93, 0, 0, 1, 2, 0xAA]
    assert c.receive(json.dumps({"cmd": "c2s_raw", "data": {"did": "d1", "raw": raw93}})) == \
        gc.Raw("d1", 0x93, 258, b"\xaa")
    assert c.receive('{"cmd": "c2s_ack", "res_sn": 3, "did": "d1"}') == gc.Ack("d1", 3)
    assert c.receive('{"cmd": "ping"}') == gc.Ping()


@pytest.mark.parametrize(("value", "seconds"), [(None, 180), (1, 1), (55, 55), (180, 180), (181, 180), (999, 180),
                                                (1000, 1), (60000, 60), (180000, 180), (600000, 180), (1500, 2)])
def test_heartbeat_interval(value, seconds):
    assert gc.heartbeat_seconds(value) == seconds


@pytest.mark.parametrize(("state", "text", "code"), [
    (None, "{not json", gc.MALFORMED_JSON),
    (None, "[1]", gc.MALFORMED_JSON),
    (None, '{"cmd": 5}', gc.MALFORMED_JSON),
    (None, '{"cmd": "fly"}', gc.UNKNOWN_CMD),
    (None, '{"cmd": "c2s_read", "data": {"did": "d1"}}', gc.NOT_LOGGED_IN),
    (None, '{"cmd": "subscribe_req", "data": []}', gc.NOT_LOGGED_IN),
    (None, '{"cmd": "login_req", "data": {"appid": "a", "uid": "u"}}', gc.BAD_FIELD),
    (None, '{"cmd": "login_req", "data": {"appid": "a", "uid": "u", "token": "t", "p0_type": "x"}}', gc.BAD_FIELD),
    (None, '{"cmd": "login_req", "data": {"appid": "a", "uid": "u", "token": "t", "heartbeat_interval": 0}}',
     gc.BAD_FIELD),
    ("custom", '{"cmd": "c2s_write", "data": {"did": "d1", "attrs": {"unlock": true}}}', gc.WRONG_P0_TYPE),
    ("custom", '{"cmd": "c2s_read", "data": {"did": "d1"}}', gc.WRONG_P0_TYPE),
    ("attrs_v4", '{"cmd": "c2s_write", "data": {"did": "d1", "attrs": {}}}', gc.BAD_FIELD),
    ("attrs_v4", '{"cmd": "c2s_write", "req_sn": -1, "data": {"did": "d1", "attrs": {"unlock": true}}}',
     gc.BAD_FIELD),
    ("attrs_v4", '{"cmd": "c2s_read", "data": {"did": ""}}', gc.BAD_FIELD),
    ("attrs_v4", '{"cmd": "c2s_ack", "did": "d1"}', gc.BAD_FIELD),
    ("custom", '{"cmd": "c2s_raw", "data": {"did": "d1", "raw": [0, 0, 0, 3, 4, 0, 0, 145, 1]}}', gc.BAD_RAW),
    ("custom", '{"cmd": "c2s_raw", "data": {"did": "d1", "raw": [0, 0, 0, 3, 4, 0, 0, 144, 256]}}', gc.BAD_RAW),
    ("custom", '{"cmd": "c2s_raw", "data": {"did": "d1", "raw": [0, 0, 0, 3, 9, 0, 0, 144, 1]}}', gc.BAD_RAW),
    ("custom", '{"cmd": "c2s_raw", "data": {"did": "d1", "raw": [0, 0, 0, 3, 3, 0, 0, 144]}}', gc.BAD_RAW),
    ("custom", '{"cmd": "c2s_raw", "data": {"did": "d1", "raw": "AAAA"}}', gc.BAD_RAW),
])
def test_wrong_messages_get_their_code(state, text, code):
    event = _codec(state).receive(text)
    assert isinstance(event, gc.Invalid) and event.error_code == code, event


def test_raw_longer_than_the_agent_takes_is_refused_before_it_is_built():
    c = _codec("custom")
    big = gc.frame(0x90, bytes(257))
    event = c.receive(json.dumps({"cmd": "c2s_raw", "data": {"did": "d1", "raw": big}}))
    assert event.error_code == gc.BAD_RAW and "1-256 bytes" in event.msg
    huge = {"cmd": "c2s_raw", "data": {"did": "d1", "raw": [0] * 100000}}
    event = c.receive(json.dumps(huge))
    assert event.error_code == gc.BAD_RAW and "at most 271" in event.msg


def test_the_clouds_messages_field_by_field():
    assert json.loads(gc.login_res(True)) == {"cmd": "login_res", "data": {"success": True}}
    assert json.loads(gc.subscribe_res(["d1"], [("d2", gc.NOT_BOUND, "no")])) == {"cmd": "subscribe_res", "data": {
        "success": [{"did": "d1", "error_code": 0, "msg": "ok"}],
        "failed": [{"did": "d2", "error_code": 1010, "msg": "no"}]}}
    assert json.loads(gc.online_status("d1", True)) == {"cmd": "s2c_online_status", "data": {
        "did": "d1", "passcode": "", "mac": "d1", "online": True}}
    assert json.loads(gc.binding_changed("d1", False)) == {"cmd": "s2c_binding_changed",
                                                           "data": {"did": "d1", "bind": False}}
    assert json.loads(gc.noti("d1", {"unlock": True}, res_sn=4)) == {
        "cmd": "s2c_noti", "res_sn": 4, "data": {"did": "d1", "attrs": {"unlock": True}}}
    assert "res_sn" not in json.loads(gc.noti("d1", {}, req_sn=5))
    with pytest.raises(ValueError, match="both"):
        gc.noti("d1", {}, res_sn=1, req_sn=2)
    assert json.loads(gc.s2c_ack("d1", 4)) == {"cmd": "s2c_ack", "res_sn": 4, "did": "d1"}
    assert json.loads(gc.s2c_raw("d1", 0x91, b"\x07")) == {"cmd": "s2c_raw",
                                                           "data": {"did": "d1", "raw": [0, 0, 0, 3, 4, 0, 0, 145, 7]}}
    assert json.loads(gc.pong()) == {"cmd": "pong"}
    assert json.loads(gc.invalid_msg(1009, "log in")) == {"cmd": "s2c_invalid_msg",
                                                          "data": {"error_code": 1009, "msg": "log in"}}


def test_any_message_is_an_event_never_an_exception():
    """Every cmd with fields of every JSON type, in every login state: the
    codec answers with an event (Invalid for the wrong ones), never raises."""
    import itertools
    import random
    rnd = random.Random(12)
    values = [None, True, 0, -1, 2**40, 1.5, "", "x", "d1/usr", "a" * 300, [], [1, 2], [0, 0, 0, 3, 4, 0, 0, 144, 9],
              {}, {"did": "d1"}, {"did": 5}, [{"did": "d1"}, 7, {"did": ""}], {"unlock": True}]
    keys = ["did", "raw", "attrs", "names", "appid", "uid", "token", "p0_type", "heartbeat_interval",
            "auto_subscribe"]
    count = 0
    for cmd, state in itertools.product(list(gc._HANDLERS) + ["x"], [None, "attrs_v4", "custom"]):
        for _ in range(60):
            data = rnd.choice(values) if rnd.random() < 0.3 else {k: rnd.choice(values) for k in
                                                                   rnd.sample(keys, rnd.randint(0, 5))}
            msg = {"cmd": cmd, "data": data}
            for k in ("req_sn", "res_sn", "did"):
                if rnd.random() < 0.3:
                    msg[k] = rnd.choice(values)
            event = _codec(state).receive(json.dumps(msg))
            assert isinstance(event, gc.Login | gc.Subscribe | gc.Read | gc.Write | gc.Raw | gc.Ack | gc.Ping
                              | gc.Invalid)
            count += 1
    assert count == 8 * 3 * 60
