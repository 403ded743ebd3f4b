# The management channel's codec (agent/codecs/control.py) and signed
# requests (agent/codecs/signing.py), on both runtimes: what a control
# server sends is answered or refused with a reason, never crashes; a
# signed request is taken only when its signature, time and nonce hold.
import json

from agent.codecs import control as codec
from agent.codecs.signing import MAX_NONCES, NONCE_KEEP_S, Verifier, canon, hmac_sha256, sign

from support import raises

KEY = "0123456789abcdef-site-secret"
DEV = "door-1"
NOW = 1780000000
NONCE = "00112233445566778899aabbccddeeff"


def _refused(ev):
    assert type(ev) is codec.Refused, "expected a refusal, got a request"
    return ev.error


def test_a_request_is_its_type_and_body_whatever_json_the_body_is():
    for body in (None, {"last": 5}, "text", [1, {"a": [True, None]}], 3, 2.5):
        msg = {"type": "system/log/get"}
        if body is not None:
            msg["body"] = body
        ev = codec.parse(json.dumps(msg), 16384)
        assert type(ev) is codec.Request and ev.type == "system/log/get" and ev.body == body


def test_bad_input_is_refused_with_a_reason_naming_the_problem():
    assert "malformed JSON" in _refused(codec.parse('{"type": "app/state"', 16384))
    assert "JSON object" in _refused(codec.parse('["app/state"]', 16384))
    for t in (None, 7, "", "state", "App/State", "/app", "app/", "a//b", "app/state\n", "x/" + "y" * 60):
        assert "request type must be" in _refused(codec.parse(json.dumps({"type": t}), 16384))
    # Under a type it could read, a refusal is answered under that type.
    deep = {"type": "app/register", "body": [[[[[[[[[[[[[[[[[["x"]]]]]]]]]]]]]]]]]]}
    ev = codec.parse(json.dumps(deep), 16384)
    assert ev.type == "app/register" and "nested over 16 levels" in ev.error


def test_sizes_are_checked_before_parsing():
    big = json.dumps({"type": "file/put", "body": "x" * 2000})
    ev = codec.parse(big, 1024)
    assert ev.counter == "control_too_big" and "over 1024 bytes" in ev.error
    many = '{"type": "app/state", "body": ' + "[" * 300 + "]" * 300 + "}"
    assert "over 256 arrays and objects" in _refused(codec.parse(many, 16384))


def _same(ev1, ev2):
    if type(ev1) is codec.Request:
        return type(ev2) is codec.Request and (ev1.type, ev1.body) == (ev2.type, ev2.body)
    return type(ev2) is codec.Refused and (ev1.type, ev1.counter, ev1.error) == (ev2.type, ev2.counter, ev2.error)


def test_the_utf8_bytes_of_a_request_parse_as_its_text_does():
    # What the WebSocket layer hands over on the agent: bytes, not decoded.
    deep = {"type": "app/register", "body": [[[[[[[[[[[[[[[[[["x"]]]]]]]]]]]]]]]]]]}
    texts = [json.dumps({"type": "file/put", "body": {"path": "/é.txt", "data": "QUJD"}}),
             '{"type": "app/state", "body": "caf\u00e9 €"}', '{"type": "app/state"',
             "[1]", json.dumps(deep), '{"type": "app/state", "body": ' + "[" * 300 + "]" * 300 + "}",
             json.dumps({"type": "file/put", "body": "x" * 2000}),
             # malformed, a three-byte character across the cut of the error's quote
             '{"type": "app/state", "body": "' + "€" * 40 + '"']
    for text in texts:
        for max_message in (16384, 1024):
            want = codec.parse(text, max_message)
            for data in (text.encode(), bytearray(text.encode())):
                assert _same(want, codec.parse(data, max_message)), (text[:40], max_message)
    ev = codec.parse(texts[-1].encode(), 16384)   # quoted from its first characters, none of them cut
    assert "malformed JSON" in ev.error and "app/state" in ev.error


def test_utf8_bytes_only_one_text_one_meaning():
    # CPython's json.loads reads bytes in UTF-16 or 32 (NULs) or behind a
    # BOM; MicroPython's does not. Both refuse them here.
    text = '{"type": "system/reboot"}'
    utf16 = bytes(b for c in text.encode() for b in (c, 0))
    for data in (utf16, b"\x00" + text.encode(), b"\xef\xbb\xbf" + text.encode()):
        ev = codec.parse(data, 16384)
        assert type(ev) is codec.Refused and "NUL byte or a byte order mark" in ev.error, data[:8]


def test_a_reply_has_type_body_and_an_empty_error_and_no_body_on_error():
    assert json.loads(codec.reply("app/state", {"a": 1})) == {"type": "app/state", "body": {"a": 1}, "error": ""}
    assert json.loads(codec.reply("app/register")) == {"type": "app/register", "error": ""}
    assert json.loads(codec.reply("x/y", {"a": 1}, "no")) == {"type": "x/y", "error": "no"}


def test_hmac_matches_rfc_4231():
    assert hmac_sha256(b"Jefe", b"what do ya want for nothing?") == \
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    # A key longer than the block is hashed first.
    assert hmac_sha256(b"\xaa" * 131, b"Test Using Larger Than Block-Size Key - Hash Key First") == \
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"


def test_canonical_json_sorts_keys_escapes_non_ascii_and_refuses_floats():
    assert canon(None) == "null"
    assert canon({"b": [1, True, None], "a": "x"}) == '{"a":"x","b":[1,true,null]}'
    assert canon("é\"\\\n\x01\x7f😀") == '"\\u00e9\\"\\\\\\n\\u0001\\u007f\\ud83d\\ude00"'
    assert canon({"z": {"y": -12345678901234567890}}) == '{"z":{"y":-12345678901234567890}}'
    assert "float in signed body" in str(raises(ValueError, canon, {"a": [1.5]}))


def _signed(t="system/reboot", body=None, ts=NOW, nonce=NONCE, key=KEY, device="door-1"):
    msg = {"type": t, "ts": ts, "nonce": nonce, "sig": sign(key, device, t, ts, nonce, body)}
    if body is not None:
        msg["body"] = body
    return msg


def _check(v, msg, now=NOW, clock_ok=True):
    ev = codec.parse(json.dumps(msg), 16384, v, now, clock_ok)
    return ev.error if type(ev) is codec.Refused else None


def test_a_signed_request_is_taken_once_and_only_with_the_right_key_fresh():
    v = Verifier(KEY, DEV)
    body = {"code": "123456789012", "name": "Tür"}
    assert _check(v, _signed("app/register", body)) is None
    # The same again: a replay.
    assert "replayed" in _check(v, _signed("app/register", body))
    assert "bad signature" in _check(v, _signed(nonce="ab" * 8, key="another-key-of-16+chars"))
    # Signed for another door that shares the key: not taken here.
    assert "for another device" in _check(v, _signed(nonce="a1" * 8, device="door-2"))
    tampered = _signed("app/register", body, nonce="cd" * 8)
    tampered["body"]["code"] = "999999999999"
    assert "bad signature" in _check(v, tampered)
    retyped = _signed("app/state", nonce="ef" * 8)
    retyped["type"] = "system/reboot"
    assert "bad signature" in _check(v, retyped)
    assert "stale" in _check(v, _signed(ts=NOW - 61, nonce="01" * 8))
    assert "stale" in _check(v, _signed(ts=NOW + 61, nonce="02" * 8))
    assert _check(v, _signed(ts=NOW + 60, nonce="03" * 8)) is None
    assert "unsigned request refused" in _check(v, {"type": "system/reboot"})
    assert "nonce must be" in _check(v, _signed(nonce="XYZ" * 6))
    assert "ts must be" in _check(v, dict(_signed(), ts="1780000000"))
    assert "sig must be" in _check(v, dict(_signed(), sig="00"))
    assert "float in signed body" in _check(v, {"type": "app/register", "body": {"n": 1.5}, "ts": NOW,
                                                "nonce": "04" * 8, "sig": "0" * 64})
    assert "clock not set" in _check(v, _signed(nonce="05" * 8), clock_ok=False)


def test_nonces_are_kept_for_their_window_and_a_full_cache_refuses_rather_than_forgets():
    v = Verifier(KEY, DEV)
    for i in range(MAX_NONCES):
        assert _check(v, _signed(nonce="%032x" % i)) is None
    assert "too many signed requests" in _check(v, _signed(nonce="%032x" % 999))
    # The first nonce cannot come back while it is remembered...
    assert "replayed" in _check(v, _signed(ts=NOW + 50, nonce="%032x" % 0), now=NOW + 50)
    # ...and once the window has passed, its request is stale anyway.
    later = NOW + NONCE_KEEP_S
    assert _check(v, _signed(ts=later, nonce="%032x" % 999), now=later) is None
    assert "stale" in _check(v, _signed(ts=NOW, nonce="%032x" % 0), now=later)


def test_a_request_taken_at_one_edge_of_its_window_is_not_taken_again_at_the_other():
    # ts is taken from NOW - 60 to NOW + 60: a nonce forgotten after 120 s
    # by the device's clock let the same request in twice (red team).
    v = Verifier(KEY, DEV)
    assert _check(v, _signed(), now=NOW - 60) is None
    assert "replayed" in _check(v, _signed(), now=NOW + 60)


def test_a_clock_set_back_brings_no_request_taken_before_back_to_life():
    # An uplink's cloud (set_time) may move the device's clock; a request
    # recorded and forgotten by the nonce cache must stay refused.
    v = Verifier(KEY, DEV)
    recorded = _signed()
    assert _check(v, recorded) is None
    assert _check(v, _signed(ts=NOW + 600, nonce="aa" * 16), now=NOW + 600) is None   # its nonce forgotten
    assert "old request" in _check(v, recorded, now=NOW)   # the clock set back to when it was signed
    # A fresh request at the clock set back is refused too, until the clock has caught up.
    assert "old request" in _check(v, _signed(nonce="bb" * 16), now=NOW)


def test_a_request_signed_before_the_floor_the_agent_started_at_is_refused():
    v = Verifier(KEY, DEV)
    v.floor = NOW    # the channel's clock at the agent's start
    assert "old request" in _check(v, _signed(ts=NOW - 5))
    assert _check(v, _signed(ts=NOW)) is None
