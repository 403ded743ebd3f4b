# The agent's WebSocket codec (agent/codecs/websocket.py), bytes in and out,
# on both runtimes: RFC 6455's own examples, and every way a server can
# break the protocol or a limit, refused at the frame header.
from agent.codecs import websocket as ws

from support import raises

RFC_KEY = "dGhlIHNhbXBsZSBub25jZQ=="            # RFC 6455 section 1.3
RFC_ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def _unmask(data):
    """(opcode, payload) of one client frame, checking it is masked."""
    assert data[0] & 0x80 and data[1] & 0x80
    n = data[1] & 0x7F
    at = 2
    if n == 126:
        n, at = int.from_bytes(data[2:4], "big"), 4
    elif n == 127:
        n, at = int.from_bytes(data[2:10], "big"), 10
    key = data[at:at + 4]
    body = data[at + 4:]
    assert len(body) == n
    return data[0] & 0x0F, bytes(body[i] ^ key[i % 4] for i in range(n))


def _server_frame(opcode, payload, fin=True):
    n = len(payload)
    b0 = (0x80 if fin else 0) | opcode
    if n < 126:
        return bytes((b0, n)) + payload
    if n < 65536:
        return bytes((b0, 126)) + n.to_bytes(2, "big") + payload
    return bytes((b0, 127)) + n.to_bytes(8, "big") + payload


def _feed_all(p, data):
    """feed(), then what it left for later (at most MAX_EVENTS a call)."""
    got = p.feed(data)
    while p.pending():
        got += p.feed(b"")
    return got


def _refused(code, data, max_size=4096):
    e = raises(ws.WsError, ws.FrameParser(max_size).feed, data)
    assert e.code == code, (e.code, e.reason)
    return e.reason


# -- handshake --------------------------------------------------------------------
def test_the_accept_key_is_the_rfc_one():
    assert ws.accept_for(RFC_KEY) == RFC_ACCEPT
    assert len(ws.new_key(b"\x00" * 16)) == 24


def test_the_handshake_request_asks_for_an_upgrade():
    raw = ws.handshake("bench.local", 8780, "/ws", RFC_KEY).decode()
    lines = raw.split("\r\n")
    assert lines[0] == "GET /ws HTTP/1.1"
    for header in ("Host: bench.local:8780", "Connection: Upgrade", "Upgrade: websocket",
                   "Sec-WebSocket-Key: " + RFC_KEY, "Sec-WebSocket-Version: 13"):
        assert header in lines, header
    assert raw.endswith("\r\n\r\n") and "Content-Length" not in raw


OK_101 = ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
          "Sec-WebSocket-Accept: %s\r\n\r\n" % RFC_ACCEPT).encode()


def test_a_101_response_is_checked_and_what_follows_kept():
    assert ws.check_response(OK_101[:40], RFC_KEY) is None            # not all there yet
    assert ws.check_response(OK_101, RFC_KEY) == b""
    assert ws.check_response(OK_101 + b"\x81\x02hi", RFC_KEY) == b"\x81\x02hi"


def test_a_refused_or_foreign_handshake_says_why():
    e = raises(ws.HandshakeError, ws.check_response, b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n", RFC_KEY)
    assert "HTTP 403" in str(e) and "token" in str(e)
    wrong = OK_101.replace(RFC_ACCEPT.encode(), b"AAAAAAAAAAAAAAAAAAAAAAAAAAA=")
    assert "Sec-WebSocket-Accept" in str(raises(ws.HandshakeError, ws.check_response, wrong, RFC_KEY))
    ext = OK_101.replace(b"\r\n\r\n", b"\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n")
    assert "not offered" in str(raises(ws.HandshakeError, ws.check_response, ext, RFC_KEY))
    assert "over" in str(raises(ws.HandshakeError, ws.check_response, b"HTTP/1.1 101 x\r\n" + b"X" * 5000, RFC_KEY))
    assert "not an HTTP" in str(raises(ws.HandshakeError, ws.check_response, b"SSH-2.0-OpenSSH\r\n\r\n", RFC_KEY))


# -- frames out ---------------------------------------------------------------------
def test_a_masked_frame_is_the_rfc_one():
    assert bytes(ws.frame(ws.TEXT, b"Hello", b"\x37\xfa\x21\x3d")) == bytes(
        (0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58))


def test_frames_of_every_length_form_unmask_to_their_payload():
    for n in (0, 1, 125, 126, 255, 256, 257, 1000, 65535, 65536, 70001):
        payload = bytes((i * 7) & 0xFF for i in range(n))
        op, got = _unmask(ws.frame(ws.TEXT, payload, b"\x01\x82\x03\xf4"))
        assert op == ws.TEXT and got == payload, n


def test_a_close_reason_is_cut_to_fit_without_splitting_a_character():
    body = ws.close_payload(1009, "é" * 100)
    assert body[:2] == b"\x03\xf1" and len(body) <= 125
    assert body[2:].decode() == "é" * 61


# -- frames in ----------------------------------------------------------------------
def test_messages_pings_and_fragments_are_events():
    p = ws.FrameParser(4096)
    data = (_server_frame(ws.TEXT, b"Hello") + _server_frame(ws.PING, b"p1")
            + _server_frame(ws.TEXT, b"Hel", fin=False) + _server_frame(ws.PONG, b"")
            + _server_frame(ws.CONT, b"lo \xc3\xa9", fin=True))
    want = [(ws.MESSAGE, "Hello"), (ws.PING_EV, b"p1"), (ws.PONG_EV, b""), (ws.MESSAGE, "Hello é")]
    assert p.feed(data) == want
    # The same bytes one at a time: the same events.
    p = ws.FrameParser(4096)
    got = []
    for i in range(len(data)):
        got += p.feed(data[i:i + 1])
    assert got == want


def test_the_close_frame_ends_the_parser():
    p = ws.FrameParser(4096)
    assert p.feed(_server_frame(ws.CLOSE, b"\x03\xe9going away") + _server_frame(ws.TEXT, b"late")) == [
        (ws.CLOSE_EV, (1001, "going away"))]
    assert p.closed and p.feed(_server_frame(ws.TEXT, b"more")) == []
    assert ws.FrameParser(10).feed(_server_frame(ws.CLOSE, b"")) == [(ws.CLOSE_EV, (ws.NO_STATUS, ""))]


def test_too_big_is_refused_at_the_header_before_any_payload():
    # 1 MB announced, only the 10 header bytes sent: refused already.
    reason = _refused(ws.TOO_BIG, bytes((0x81, 127)) + (1 << 20).to_bytes(8, "big"))
    assert "4096" in reason
    _refused(ws.TOO_BIG, bytes((0x81, 126)) + (4097).to_bytes(2, "big"))
    assert ws.FrameParser(4096).feed(_server_frame(ws.TEXT, b"x" * 4096)) == [(ws.MESSAGE, "x" * 4096)]
    # Fragments count together...
    p = ws.FrameParser(4096)
    p.feed(_server_frame(ws.TEXT, b"x" * 3000, fin=False))
    assert raises(ws.WsError, p.feed, _server_frame(ws.CONT, b"x" * 1100)).code == ws.TOO_BIG
    # ...and cannot come in thousands of tiny pieces.
    p = ws.FrameParser(4096)
    p.feed(_server_frame(ws.TEXT, b"x", fin=False))
    e = raises(ws.WsError, p.feed, _server_frame(ws.CONT, b"x", fin=False) * ws.MAX_FRAGMENTS)
    assert e.code == ws.TOO_BIG and "fragments" in e.reason


def test_invalid_utf8_is_1007_on_both_runtimes():
    for bad in (b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"ok\xe2\x82"):
        _refused(ws.INVALID_DATA, _server_frame(ws.TEXT, bad))
    p = ws.FrameParser(4096)
    p.feed(_server_frame(ws.TEXT, b"\xe2", fin=False))
    assert p.feed(_server_frame(ws.CONT, b"\x82\xac")) == [(ws.MESSAGE, "€")]   # split across fragments: fine
    _refused(ws.INVALID_DATA, _server_frame(ws.CLOSE, b"\x03\xe8\xff"))


def test_as_bytes_a_message_comes_checked_but_not_decoded():
    # The control channel parses JSON from the bytes: same checks, no str.
    p = ws.FrameParser(4096, as_bytes=True)
    data = (_server_frame(ws.TEXT, b'{"a": 1}') + _server_frame(ws.TEXT, b"caf\xc3", fin=False)
            + _server_frame(ws.CONT, b"\xa9 \xe2\x82\xac"))
    got = _feed_all(p, data)
    assert [(k, bytes(v)) for k, v in got] == [(ws.MESSAGE, b'{"a": 1}'), (ws.MESSAGE, "café €".encode())]
    assert all(not isinstance(v, str) for _, v in got)
    for bad in (b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"ok\xe2\x82", b"x" * 50 + b"\x80"):
        e = raises(ws.WsError, ws.FrameParser(4096, as_bytes=True).feed, _server_frame(ws.TEXT, bad))
        assert e.code == ws.INVALID_DATA, bad


def test_protocol_breaks_are_1002_and_binary_1003():
    assert "masked" in _refused(ws.PROTOCOL_ERROR, bytes((0x81, 0x81, 1, 2, 3, 4, 5)))
    assert "reserved" in _refused(ws.PROTOCOL_ERROR, bytes((0xC1, 0x01)) + b"x")
    assert "control" in _refused(ws.PROTOCOL_ERROR, _server_frame(ws.PING, b"x" * 126))
    assert "control" in _refused(ws.PROTOCOL_ERROR, _server_frame(ws.PING, b"x", fin=False))
    assert "continuation" in _refused(ws.PROTOCOL_ERROR, _server_frame(ws.CONT, b"x"))
    assert "opcode" in _refused(ws.PROTOCOL_ERROR, _server_frame(0x3, b"x"))
    assert "opcode" in _refused(ws.PROTOCOL_ERROR, _server_frame(0xB, b"x"))
    assert "shortest" in _refused(ws.PROTOCOL_ERROR, bytes((0x81, 126, 0, 5)) + b"hello")
    assert "shortest" in _refused(ws.PROTOCOL_ERROR, bytes((0x81, 127)) + (1 << 63).to_bytes(8, "big"))
    assert "1-byte" in _refused(ws.PROTOCOL_ERROR, _server_frame(ws.CLOSE, b"\x03"))
    assert "1005" in _refused(ws.PROTOCOL_ERROR, _server_frame(ws.CLOSE, b"\x03\xed"))
    p = ws.FrameParser(4096)
    p.feed(_server_frame(ws.TEXT, b"a", fin=False))
    assert "before" in raises(ws.WsError, p.feed, _server_frame(ws.TEXT, b"b")).reason
    assert "binary" in _refused(ws.UNSUPPORTED_DATA, _server_frame(ws.BINARY, b"\x00\x01"))


def test_wanted_reads_no_further_than_the_payload_needs():
    p = ws.FrameParser(10000, chunk=2048)
    assert p.wanted() == 2048
    p.feed(bytes((0x81, 126)) + (3000).to_bytes(2, "big") + b"x" * 100)
    assert p.wanted() == 2048
    p.feed(b"x" * 2800)
    assert p.wanted() == 100


def test_random_bytes_in_random_pieces_never_raise_anything_but_wserror():
    # A seeded fuzz the same on both runtimes: whatever the server sends,
    # the parser answers with events or one WsError, never another
    # exception, and never keeps more than max_size of payload.
    import random
    random.seed(8)
    for trial in range(300):
        p = ws.FrameParser(512)
        data = bytes(random.getrandbits(8) for _ in range(random.randrange(1, 700)))
        if trial % 3 == 0:      # make a valid-looking header likely
            data = bytes((0x81, random.randrange(0, 128))) + data
        at = 0
        try:
            while at < len(data):
                n = random.randrange(1, 64)
                for kind, value in p.feed(data[at:at + n]):
                    assert kind in (ws.MESSAGE, ws.PING_EV, ws.PONG_EV, ws.CLOSE_EV)
                    if kind == ws.MESSAGE:
                        assert len(value.encode()) <= 512
                at += n
        except ws.WsError as e:
            assert e.code in (ws.PROTOCOL_ERROR, ws.UNSUPPORTED_DATA, ws.INVALID_DATA, ws.TOO_BIG), e.code


def test_any_split_of_valid_frames_gives_the_same_events():
    import random
    random.seed(9)
    frames = b"".join(_server_frame(ws.TEXT, ("m%d é" % i).encode() * (i % 7 + 1)) + _server_frame(ws.PING, b"x")
                      for i in range(20))
    want = _feed_all(ws.FrameParser(4096), frames)
    assert len(want) == 40
    for _ in range(30):
        p = ws.FrameParser(4096)
        got = []
        at = 0
        while at < len(frames):
            n = random.randrange(1, 40)
            got += _feed_all(p, frames[at:at + n])
            at += n
        assert got == want


def test_a_burst_of_pings_comes_out_a_few_events_at_a_time():
    # 512 empty pings in one read were 512 events (37 KB on MicroPython)
    # before any was handled; now at most MAX_EVENTS per feed().
    p = ws.FrameParser(4096)
    data = _server_frame(ws.PING, b"") * 512 + _server_frame(ws.TEXT, b"after")
    got = p.feed(data)
    assert len(got) == ws.MAX_EVENTS and p.pending()
    while p.pending():
        more = p.feed(b"")
        assert len(more) <= ws.MAX_EVENTS
        got += more
    assert len(got) == 513 and got[-1] == (ws.MESSAGE, "after") and not p.pending()
    p = ws.FrameParser(4096)
    assert p.feed(bytes((0x81, 126, 0))) == [] and not p.pending()   # a header cut short is no backlog
