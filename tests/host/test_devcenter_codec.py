"""The developer-center messages without a network (devcenter_codec.py):
each client message of the seed 003 document parses as it is shown, each
malformed one is refused with the document's code, and each server message
is built with the document's fields."""

import base64
import json

import pytest

from host_tools.bench import devcenter_codec as codec
from host_tools.bench.devcenter_codec import DcError

DOC_LOGIN = '{\n    "cmd": "login",\n    "data": {\n        "token": "xxxxxxxxxxxxxxxxxxxxxx"\n    }\n}'
DOC_SUBSCRIBE = json.dumps({"cmd": "subscribe", "data": [
    {"deviceKey": "1234567890", "messageType": ["ONLINE"], "productKey": "p12345"},
    {"deviceKey": "1234567890", "messageType": ["ONLINE", "STATUS"], "productKey": "p12345"}]}, indent=4)
DOC_SEND_RAW = json.dumps({"cmd": "send", "data": {
    "cacheTime": 3600, "dataFormat": "Text", "deviceKey": "866123456789015", "isCache": True,
    "productKey": "p12345", "raw": "123456", "type": "RAW"}}, indent=4)
DOC_SEND_TSL = json.dumps({"cmd": "send", "data": {
    "deviceKey": "1234567890", "kv": "[{\"id\":5,\"name\":\"openapi\",\"type\":\"BOOL\",\"value\":\"true\"}]",
    "productKey": "p12345", "type": "WRITE-ATTR"}}, indent=4)
DOC_UNSUBSCRIBE = json.dumps({"cmd": "unsubscribe", "data": [
    {"deviceKey": "1234567890", "productKey": "p12345"}, {"deviceKey": "1234567890", "productKey": "p12345"}]})


def code_of(text):
    with pytest.raises(DcError) as e:
        codec.parse(text)
    return e.value.code


def send(**data):
    return json.dumps({"cmd": "send", "data": {"productKey": "p12345", "deviceKey": "1234567890", **data}})


def test_the_documents_client_messages_parse_as_shown():
    assert codec.parse(DOC_LOGIN) == codec.Login("xxxxxxxxxxxxxxxxxxxxxx")
    assert codec.parse('{"cmd": "pong"}') == codec.Pong()
    sub = codec.parse(DOC_SUBSCRIBE)
    assert sub.targets == (codec.Target("p12345", "1234567890", 1, ("ONLINE",)),
                           codec.Target("p12345", "1234567890", 1, ("ONLINE", "STATUS")))
    raw = codec.parse(DOC_SEND_RAW)
    assert (raw.type, raw.raw, raw.is_cache, raw.cache_time, raw.msg_id, raw.qos) == ("RAW", b"123456", True, 3600,
                                                                                      0, 1)
    tsl = codec.parse(DOC_SEND_TSL)
    assert tsl.kv == (codec.KvItem(5, "openapi", "BOOL", "true"),)
    assert codec.parse(DOC_UNSUBSCRIBE).targets == (codec.Target("p12345", "1234567890"),) * 2


@pytest.mark.parametrize("text,code", [
    ("{not json", 4002),
    ('{"cmd": NaN}', 4002),
    ("[1, 2]", 4006),
    ('{"data": {}}', 4003),
    ('{"cmd": ""}', 4003),
    ('{"cmd": 7}', 4004),
    ('{"cmd": "ping"}', 4004),
    ('{"cmd": "login"}', 4005),
    ('{"cmd": "login", "data": {}}', 4005),
    ('{"cmd": "login", "data": "tok"}', 4006),
    ('{"cmd": "login", "data": {"token": ""}}', 4007),
    ('{"cmd": "login", "data": {"token": 12}}', 4006),
    ('{"cmd": "subscribe", "data": {"deviceKey": "1"}}', 4006),
    ('{"cmd": "unsubscribe", "data": "all"}', 4006),
])
def test_malformed_messages_get_the_documents_codes(text, code):
    assert code_of(text) == code


def test_an_oversized_message_is_refused_before_parsing():
    with pytest.raises(DcError) as e:
        codec.parse('{"cmd": "pong", "pad": "' + "x" * 100 + '"}', max_bytes=64)
    assert e.value.code == 4006 and "64 bytes" in e.value.detail


@pytest.mark.parametrize("entry,code", [
    ({"deviceKey": "1", "messageType": ["ONLINE"]}, 4021),
    ({"productKey": "", "deviceKey": "1", "messageType": ["ONLINE"]}, 4021),
    ({"productKey": "p 1", "deviceKey": "1", "messageType": ["ONLINE"]}, 4022),
    ({"productKey": 12345, "deviceKey": "1", "messageType": ["ONLINE"]}, 4022),
    ({"productKey": "p1", "messageType": ["ONLINE"]}, 4023),
    ({"productKey": "p1", "deviceKey": "a\nb", "messageType": ["ONLINE"]}, 4024),
    ({"productKey": "p1", "deviceKey": "1"}, 4025),
    ({"productKey": "p1", "deviceKey": "1", "messageType": []}, 4025),
    ({"productKey": "p1", "deviceKey": "1", "messageType": ["ONLINE", "SHADOW"]}, 4012),
    ({"productKey": "p1", "deviceKey": "1", "messageType": "ONLINE"}, 4006),
    ("not an object", 4006),
])
def test_each_subscribe_entry_gets_its_own_code(entry, code):
    good = {"productKey": "p1", "deviceKey": "2", "messageType": ["MEVENT-ERROR"]}
    sub = codec.parse(json.dumps({"cmd": "subscribe", "data": [good, entry]}))
    assert [t.code for t in sub.targets] == [1, code]


def test_too_many_devices_in_one_subscribe_is_a_format_error():
    entry = {"productKey": "p1", "deviceKey": "1", "messageType": ["ONLINE"]}
    assert code_of(json.dumps({"cmd": "subscribe", "data": [entry] * (codec.MAX_TARGETS + 1)})) == 4006


@pytest.mark.parametrize("data,code", [
    ({"type": "WRITE-ATTR", "kv": "{}", "productKey": ""}, 4021),
    ({"type": "WRITE-ATTR", "kv": "{}", "deviceKey": ""}, 4023),
    ({}, 4026),
    ({"type": ""}, 4026),
    ({"type": "REBOOT"}, 4015),
    ({"type": "RAW"}, 4020),
    ({"type": "WRITE-ATTR"}, 4020),
    ({"type": "EXE-SERV"}, 4020),
    ({"type": "WRITE-ATTR", "kv": "not json"}, 4028),
    ({"type": "WRITE-ATTR", "kv": "[]"}, 4028),
    ({"type": "WRITE-ATTR", "kv": "[true]"}, 4028),
    ({"type": "WRITE-ATTR", "kv": [{"value": 1}]}, 4028),
    ({"type": "WRITE-ATTR", "kv": [{"id": 1.5, "value": 1}]}, 4028),
    ({"type": "RAW", "raw": "abc", "msgId": "x1"}, 4029),
    ({"type": "RAW", "raw": "abc", "msgId": -1}, 4029),
    ({"type": "RAW", "raw": "abc", "msgId": 10 ** 20}, 4029),
    ({"type": "RAW", "raw": "abc", "msgId": True}, 4029),
    ({"type": "RAW", "raw": "abc", "QoS": 2}, 4006),
    ({"type": "RAW", "raw": "abc", "isCache": "yes"}, 4006),
    ({"type": "RAW", "raw": "abc", "isCache": True, "cacheTime": 0}, 4006),
    ({"type": "RAW", "raw": "abc", "cacheTime": codec.MAX_CACHE_S + 1}, 4006),
    ({"type": "RAW", "raw": "abc", "dataFormat": "Binary"}, 4006),
    ({"type": "RAW", "raw": "abc", "dataFormat": "Hex"}, 4006),
    ({"type": "RAW", "raw": "!!!!", "dataFormat": "Base64"}, 4006),
    ({"type": "RAW", "raw": "a" * (codec.MAX_RAW + 1)}, 4006),
])
def test_send_is_checked_field_by_field(data, code):
    assert code_of(send(**data)) == code


def test_send_reads_every_field_and_every_raw_format():
    got = codec.parse(send(type="RAW", raw="0a0B", dataFormat="Hex", msgId=12345678901234567890, QoS=0,
                           isCache=True, cacheTime=5))
    assert (got.raw, got.msg_id, got.qos, got.is_cache, got.cache_time) == (b"\x0a\x0b", 12345678901234567890, 0,
                                                                            True, 5)
    assert codec.parse(send(type="RAW", raw=base64.b64encode(b"\x00\xff").decode(), dataFormat="Base64")).raw \
        == b"\x00\xff"
    assert codec.parse(send(type="RAW", raw="grüß", dataFormat="Text")).raw == "grüß".encode()
    assert codec.parse(send(type="RAW", raw="1", msgId="42")).msg_id == 42
    assert codec.parse(send(type="READ-ATTR")).kv is None
    assert codec.parse(send(type="READ-ATTR", kv='["LockState", "Temperature"]')).kv == (
        codec.KvItem("LockState"), codec.KvItem("Temperature"))
    assert codec.parse(send(type="WRITE-ATTR", kv={"Unlock": True})).kv == (codec.KvItem("Unlock", value=True),)
    assert code_of(json.dumps({"cmd": "send", "version": 3, "data": json.loads(send(type="RAW", raw="1"))["data"]})) \
        == 4006


@pytest.mark.parametrize("value,kind,want", [
    ("true", "bool", True), ("0", "bool", False), (True, "bool", True),
    ("25", "uint16", 25), (-3, "int16", -3), ("21.5", "float", 21.5), (7, "float", 7),
    ("locked", "enum", "locked"), ("1", "enum", 1), ("hi", "string", "hi"),
])
def test_tsl_values_sent_as_text_become_typed(value, kind, want):
    assert codec.coerce(value, kind) == want


@pytest.mark.parametrize("value,kind", [("yes", "bool"), (2, "bool"), ("2.5", "uint16"), (True, "int16"),
                                        ("nan", "float"), ("1e999", "float"), (5, "string"), (None, "enum")])
def test_values_that_are_not_of_the_type_are_4028(value, kind):
    with pytest.raises(DcError) as e:
        codec.coerce(value, kind)
    assert e.value.code == 4028


def test_server_messages_have_the_documents_fields():
    assert json.loads(codec.login_resp()) == {"cmd": "login_resp", "data": {"code": 1, "msg": "succ"}}
    assert json.loads(codec.login_resp(4008)) == {"cmd": "login_resp",
                                                  "data": {"code": 4008, "msg": "token validation failed"}}
    assert json.loads(codec.subscribe_resp([("p12345", "1234567890", 1), ("p12345", "1234567892", 4011)])) == {
        "cmd": "subscribe_resp", "data": [
            {"code": 1, "deviceKey": "1234567890", "msg": "succ", "productKey": "p12345"},
            {"code": 4011, "deviceKey": "1234567892", "msg": "device is not bound", "productKey": "p12345"}]}
    assert json.loads(codec.unsubscribe_resp([("p12345", "1234567892", 4014)]))["data"] == [
        {"code": 4014, "deviceKey": "1234567892", "msg": "device is not subscribed", "productKey": "p12345"}]
    req = '{"cmd": "login","data": {"token": "xxxxxxxxxxxxxxxxxxxxxx"}}'
    assert json.loads(codec.error(4001, req)) == {"cmd": "error", "data": {
        "code": 4001, "msg": "server internal exception", "reqMsg": req}}
    assert json.loads(codec.send_ack("12345678", 1, "123456", "4567890001", 1609316591000, 1609316592000,
                                     1609316592000, True)) == {"cmd": "send_ack", "data": {
        "msgId": 1, "ticket": "12345678", "productKey": "123456", "deviceKey": "4567890001",
        "createdAt": 1609316591000, "sentAt": 1609316592000, "ackAt": 1609316592000, "status": "succ"}}
    assert json.loads(codec.send_ack("t", 0, "p", "d", 1, 2, 3, False))["data"]["status"] == "fail"


def test_an_error_echoes_a_bounded_request():
    data = json.loads(codec.error(4002, "x" * 5000, "why"))["data"]
    assert len(data["reqMsg"]) == codec.MAX_REQ_ECHO and data["detail"] == "why"


def message(push, **kw):
    return json.loads(codec.message(push, "p12345", "1234567890", ticket="5f9924d171977c33bc5ad1b1",
                                    created_at=1609316592000, **kw))


def test_each_push_is_the_documents_message():
    common = {"productKey": "p12345", "deviceKey": "1234567890", "createdAt": 1609316592000,
              "ticket": "5f9924d171977c33bc5ad1b1"}
    assert message(codec.online(1)) == {"cmd": "message", "data": {**common, "type": "ONLINE",
                                                                   "data": {"value": 1}}}
    assert message(codec.status(3, {"battery": 20, "version": "1.2"}))["data"] == {
        **common, "type": "STATUS", "data": {"packetId": 3, "kv": {"battery": "20", "version": "1.2"}}}
    assert message(codec.raw_uplink(3, b"a message"))["data"] == {
        **common, "type": "RAW", "subtype": "UPLINK", "data": {"packetId": 3, "raw": "YSBtZXNzYWdl"}}
    assert message(codec.mattr_report(5, {"k1": "v1"}))["data"] == {
        **common, "type": "MATTR", "subtype": "REPORT", "data": {"packetId": 5, "kv": {"k1": "v1"}}}
    for level in codec.EVENT_LEVELS:
        push = codec.mevent(level, 3, "event_code3", {"param1": "1"})
        assert push.kind == "MEVENT-" + level
        assert message(push)["data"] == {**common, "type": "MEVENT", "subtype": level,
                                          "data": {"packetId": 3, "code": "event_code3", "kv": {"param1": "1"}}}
    assert message(codec.location(5, {"lat": 1222.1231}, "GP", "BD(GGA)"))["data"] == {
        **common, "type": "LOCATION", "subtype": "INFO-KV",
        "data": {"packetId": 5, "type": "GP", "subType": "BD(GGA)", "kv": {"lat": 1222.1231}}}
    with pytest.raises(ValueError):
        codec.mevent("DEBUG", 1, "x", {})


def test_enduser_data_is_a_json_string_as_the_document_shows():
    msg = message(codec.user_bind(True, "11376", "C.DM.5715.1"), device_name="door")
    assert msg["cmd"] == "message" and isinstance(msg["data"], str)
    assert json.loads(msg["data"]) == {
        "productKey": "p12345", "deviceKey": "1234567890", "type": "ENDUSER", "subtype": "USER-BIND",
        "deviceName": "door", "createdAt": 1609316592000, "ticket": "5f9924d171977c33bc5ad1b1",
        "data": {"endUserId": "11376", "endUserDomain": "C.DM.5715.1", "value": 1, "authStatus": 1,
                 "authLevel": 1}}
    unbound = json.loads(message(codec.user_bind(False, "11376", "d"))["data"])["data"]
    assert (unbound["value"], unbound["invalidCause"]) == (0, 1)


def test_tickets_are_24_hex_digits_and_differ():
    tickets = {codec.new_ticket() for _ in range(50)}
    assert len(tickets) == 50 and all(len(t) == 24 and int(t, 16) >= 0 for t in tickets)
