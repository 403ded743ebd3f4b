import json

from agent.codecs import json_ws as codec


def _s():
    return codec.Session("dev-1", "tok", max_frame=200)


def test_register_message_is_the_seeds():
    assert json.loads(_s().hello()) == {"type": "register", "device_id": "dev-1", "token": "tok"}


def test_telemetry_and_event_shapes():
    s = _s()
    assert json.loads(s.telemetry({"temperature": 23.5})) == {
        "type": "telemetry", "device_id": "dev-1", "payload": {"temperature": 23.5}}
    assert json.loads(s.event("door_opened", {})) == {
        "type": "event", "device_id": "dev-1", "event_type": "door_opened", "payload": {}}
    assert json.loads(s.ping()) == {"type": "ping"}


def test_registered_then_error_is_server_error():
    s = _s()
    assert s.receive('{"type": "error", "message": "authentication failed"}') == (
        codec.AUTH_FAILED, "authentication failed")
    assert s.receive('{"type": "registered", "device_id": "dev-1"}') == (codec.REGISTERED, False)
    assert s.receive('{"type": "error", "message": "bad"}') == (codec.SERVER_ERROR, "bad")


def test_server_ping_is_answered_with_pong():
    ev = _s().receive('{"type": "ping"}')
    assert ev[0] == codec.SEND and json.loads(ev[1]) == {"type": "pong"}


def test_command_decoded_with_optional_id():
    s = _s()
    assert s.receive('{"type": "command", "device_id": "dev-1", "command": "unlock", "payload": {"a": 1}}') == (
        codec.COMMAND, None, "unlock", {"a": 1})
    assert s.receive('{"type": "command", "command": "lock", "id": "c7"}') == (
        codec.COMMAND, "c7", "lock", {})


def test_command_for_another_device_or_nameless_is_bad_input():
    s = _s()
    assert s.receive('{"type": "command", "device_id": "other", "command": "unlock"}')[:2] == (
        codec.BAD_INPUT, "bad_command")
    assert s.receive('{"type": "command", "command": ""}')[:2] == (codec.BAD_INPUT, "bad_command")


def test_bad_input_kinds():
    s = _s()
    assert s.receive("{not json")[:2] == (codec.BAD_INPUT, "bad_json")
    assert s.receive("[1, 2]")[:2] == (codec.BAD_INPUT, "bad_message")
    assert s.receive('{"type": "launch"}')[:2] == (codec.BAD_INPUT, "unknown_type")
    assert s.receive('{"no": "type"}')[:2] == (codec.BAD_INPUT, "unknown_type")
    assert s.receive(b"\x00\x01")[:2] == (codec.BAD_INPUT, "bad_frame")
    big = '{"type": "ping", "pad": "' + "x" * 300 + '"}'
    ev = s.receive(big)
    assert ev[:2] == (codec.BAD_INPUT, "oversized_frame") and "200" in ev[2]


def test_broadcasts_and_pong_need_nothing():
    s = _s()
    for msg in ('{"type": "pong"}', '{"type": "device_status", "status": "online"}'):
        assert s.receive(msg) == (codec.NOTHING,)


def test_command_result_is_a_seed_event():
    s = _s()
    ok = json.loads(s.command_result("c1", "unlock", True, {"lock": "unlocked"}))
    assert ok == {"type": "event", "device_id": "dev-1", "event_type": "command_result",
                  "payload": {"id": "c1", "command": "unlock", "ok": True,
                              "result": {"lock": "unlocked"}}}
    bad = json.loads(s.command_result(None, "fly", False, error="unknown command"))
    assert bad["payload"] == {"command": "fly", "ok": False, "error": "unknown command"}


def test_registered_announces_acks_and_acks_decode():
    s = _s()
    assert s.receive('{"type": "registered", "acks": true}') == (codec.REGISTERED, True)
    assert s.receive('{"type": "ack", "id": 17}') == (codec.ACK, 17)
    assert s.receive('{"type": "ack", "id": "17"}')[:2] == (codec.BAD_INPUT, "bad_ack")
    assert s.receive('{"type": "ack"}')[:2] == (codec.BAD_INPUT, "bad_ack")


def test_journal_record_becomes_numbered_seed_message():
    s = _s()
    assert json.loads(s.record([5, 1700000000, "telemetry", None, {"t": 1}])) == {
        "type": "telemetry", "device_id": "dev-1", "payload": {"t": 1}, "id": 5, "time": 1700000000}
    assert json.loads(s.record([6, 1700000001, "event", "door_opened", {}])) == {
        "type": "event", "device_id": "dev-1", "event_type": "door_opened", "payload": {},
        "id": 6, "time": 1700000001}
