import json

from agent.codecs import json_ws as codec
from agent.codecs.session import (
    NOTHING,
    Ack,
    AuthFailed,
    BadInput,
    Command,
    LocalProtocolError,
    Registered,
    Send,
    ServerError,
)

from support import raises


def _s():
    return codec.Session("dev-1", "tok", max_frame=200)


def _registered(acks=False):
    s = _s()
    s.hello()
    assert s.receive(json.dumps({"type": "registered", "acks": acks})) == Registered(acks)
    return s


def test_register_message_is_the_protocols():
    assert json.loads(_s().hello()) == {"type": "register", "device_id": "dev-1", "token": "tok"}


def test_telemetry_and_event_shapes():
    s = _registered()
    assert json.loads(s.record([1, 7, "telemetry", None, {"temperature": 23.5}])) == {
        "type": "telemetry", "device_id": "dev-1", "payload": {"temperature": 23.5}, "id": 1, "time": 7}
    assert json.loads(s.record([2, 8, "event", "door_opened", {}])) == {
        "type": "event", "device_id": "dev-1", "event_type": "door_opened", "payload": {}, "id": 2, "time": 8}
    assert json.loads(s.ping()) == {"type": "ping"}


def test_punches_and_admin_logs_travel_as_events_of_their_kind():
    s = _registered()
    assert json.loads(s.record([3, 9, "punch", None, {"user": "1"}]))["event_type"] == "punch"
    assert json.loads(s.record([4, 9, "admin_log", None, {"user": "1"}]))["event_type"] == "admin_log"
    # a journal written before 0.2 spelled admin logs "admin"
    assert json.loads(s.record([5, 9, "admin", None, {"user": "1"}]))["event_type"] == "admin_log"


def test_error_before_registered_is_auth_failure_after_it_server_error():
    s = _s()
    s.hello()
    assert s.receive('{"type": "error", "message": "authentication failed"}') == AuthFailed(
        "authentication failed")
    assert s.receive('{"type": "registered", "device_id": "dev-1"}') == Registered(False)
    assert s.receive('{"type": "error", "message": "bad"}') == ServerError("bad", True)


def test_server_ping_is_answered_with_pong():
    ev = _s(), None
    s = _s()
    s.hello()
    ev = s.receive('{"type": "ping"}')  # also before registration: liveness
    assert type(ev) is Send and json.loads(ev.text) == {"type": "pong"}


def test_command_decoded_with_optional_id():
    s = _registered()
    assert s.receive('{"type": "command", "device_id": "dev-1", "command": "unlock", "payload": {"a": 1}}') == (
        Command(None, "unlock", {"a": 1}))
    ev = s.receive('{"type": "command", "command": "lock", "id": "c7"}')
    assert ev == Command("c7", "lock", {}) and ev.id == "c7" and ev.name == "lock" and ev.payload == {}


def test_command_for_another_device_or_nameless_is_bad_input():
    s = _registered()
    assert s.receive('{"type": "command", "device_id": "other", "command": "unlock"}').counter == "bad_command"
    assert s.receive('{"type": "command", "command": ""}').counter == "bad_command"


def test_bad_input_kinds():
    s = _registered()
    for text, counter in (("{not json", "bad_json"), ("[1, 2]", "bad_message"),
                          ('{"type": "launch"}', "unknown_type"), ('{"no": "type"}', "unknown_type"),
                          (b"\x00\x01", "bad_json")):
        ev = s.receive(text)
        assert type(ev) is BadInput and ev.counter == counter, text
    big = '{"type": "ping", "pad": "' + "x" * 300 + '"}'
    ev = s.receive(big)
    assert ev.counter == "oversized_frame" and "200" in ev.message


def test_a_messages_utf8_bytes_decode_as_its_text_does():
    # What the WebSocket layer hands over on the agent: the bytes, checked
    # and not decoded (a users_sync page then needs one block, not two).
    page = {"type": "command", "command": "users_sync", "id": "p1",
            "payload": {"phase": "page", "users": [{"id": "u%d" % i, "name": "Zoë %d €" % i} for i in range(3)]}}
    texts = [json.dumps(page), '{"type": "ack", "id": 7}', '{"type": "ping"}', "[1, 2]", '{"type": "ack"',
             '{"type": "command", "command": "x", "payload": ' + "[" * 300 + "]" * 300 + "}",
             '{"type": "command", "command": "' + "€" * 40]     # malformed, cut inside a character
    def received(msg):
        s = _registered()
        s.max_frame = 4096
        ev = s.receive(msg)
        return (ev.counter, ev.message) if type(ev) is BadInput else ev   # text and bytes quoted alike

    for text in texts:
        want = received(text)
        for data in (text.encode(), bytearray(text.encode())):
            assert received(data) == want, text[:40]
    assert received(texts[0]).name == "users_sync" and received(texts[0]).payload == page["payload"]
    ev = _registered().receive(texts[-1].encode())
    assert ev.counter == "bad_json" and "command" in ev.message and "..." in ev.message
    # Bytes that are not one JSON text on both runtimes: UTF-16 (NULs), a BOM.
    utf16 = bytes(b for c in b'{"type": "ping"}' for b in (c, 0))
    for data in (utf16, b"\xef\xbb\xbf" + b'{"type": "ping"}'):
        ev = _registered().receive(data)
        assert ev.counter == "bad_json" and "NUL byte or a byte order mark" in ev.message


def test_broadcasts_and_pong_need_nothing():
    s = _registered()
    for msg in ('{"type": "pong"}', '{"type": "device_status", "status": "online"}'):
        assert s.receive(msg) == NOTHING


def test_command_result_is_a_protocol_event():
    s = _registered()
    ok = json.loads(s.command_result("c1", "unlock", True, {"lock": "unlocked"}))
    assert ok == {"type": "event", "device_id": "dev-1", "event_type": "command_result",
                  "payload": {"id": "c1", "command": "unlock", "ok": True,
                              "result": {"lock": "unlocked"}}}
    bad = json.loads(s.command_result(None, "fly", False, error="unknown command"))
    assert bad["payload"] == {"command": "fly", "ok": False, "error": "unknown command"}


def test_registered_announces_acks_and_acks_decode():
    s = _registered(acks=True)
    assert s.receive('{"type": "ack", "id": 17}') == Ack(17)
    assert s.receive('{"type": "ack", "id": "17"}').counter == "bad_ack"
    assert s.receive('{"type": "ack"}').counter == "bad_ack"
    assert s.receive('{"type": "ack", "id": true}').counter == "bad_ack"


def test_journal_record_becomes_numbered_protocol_message():
    s = _registered()
    assert json.loads(s.record([5, 1700000000, "telemetry", None, {"t": 1}])) == {
        "type": "telemetry", "device_id": "dev-1", "payload": {"t": 1}, "id": 5, "time": 1700000000}
    assert json.loads(s.record([6, 1700000001, "event", "door_opened", {}])) == {
        "type": "event", "device_id": "dev-1", "event_type": "door_opened", "payload": {},
        "id": 6, "time": 1700000001}


def test_states_refuse_our_own_misuse_locally():
    s = _s()
    assert s.state == "closed"
    raises(LocalProtocolError, s.receive, '{"type": "ping"}')     # no link yet
    raises(LocalProtocolError, s.record, [1, 1, "event", "x", {}])
    s.hello()
    assert s.state == "connecting"
    # before the cloud accepted us: nothing but the registration goes out
    raises(LocalProtocolError, s.record, [1, 1, "event", "x", {}])
    raises(LocalProtocolError, s.ping)
    raises(LocalProtocolError, s.command_result, "c", "unlock", True)
    raises(LocalProtocolError, s.hello)                            # one hello per link
    e = raises(LocalProtocolError, s.record, [1, 1, "event", "x", {}])
    assert not isinstance(e, ValueError)  # never mistaken for an unencodable record
    s.receive('{"type": "registered"}')
    assert s.state == "registered"
    s.close()
    assert s.state == "closed"
    raises(LocalProtocolError, s.ping)
    s.hello()  # a new link
    assert s.state == "connecting"


def test_the_peers_misuse_is_bad_input_not_an_error():
    s = _s()
    s.hello()
    # commands and acks before `registered` are the server's mistake: ignored, counted
    assert s.receive('{"type": "command", "command": "unlock"}').counter == "unexpected_message"
    assert s.receive('{"type": "ack", "id": 1}').counter == "unexpected_message"
    assert s.receive('{"type": "registered"}') == Registered(False)
    assert s.receive('{"type": "registered"}').counter == "unexpected_message"
    assert s.state == "registered"


def test_a_deeply_nested_message_is_refused_before_parsing():
    # A few KB of "[[[[" would hold more heap than a board has once parsed.
    s = _registered()
    s.max_frame = 1024
    ev = s.receive('{"type": "command", "command": "unlock", "payload": {"a": ' + "[" * 256 + "]" * 256 + "}}")
    assert ev.counter == "bad_message" and str(codec.MAX_CONTAINERS) in ev.message
    assert s.receive('{"type": "command", "command": "unlock", "payload": {"a": [[1]]}}').name == "unlock"


def test_a_number_json_cannot_carry_makes_a_record_unsendable():
    s = _registered()
    for bad in (float("nan"), float("inf"), -float("inf")):
        raises(ValueError, s.record, [7, 1, "telemetry", None, {"temperature": bad}])
        raises(ValueError, s.record, [7, 1, "event", "x", {"deep": [{"v": bad}]}])
    assert json.loads(s.record([7, 1, "telemetry", None, {"temperature": 21.5}]))["payload"] == {"temperature": 21.5}


def test_a_long_command_name_is_refused_by_the_codec():
    s = _registered()
    ev = s.receive(json.dumps({"type": "command", "command": "u" * 150, "id": "c"}))  # within max_frame
    assert ev.counter == "bad_command" and "32" in ev.message
