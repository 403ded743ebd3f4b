# WebSocket (RFC 6455), client side, sans-IO in the spirit of wsproto:
# handshake bytes and their check, frames to send, and a FrameParser that
# turns received bytes into named events with an explicit state. No
# sockets, no clocks, no randomness of its own (the caller passes the
# handshake key and the mask keys), so both runtimes test it with bytes.
#
# Why our own: the libraries allocate a frame's payload from its header
# before any size check (a 1 MB frame was a 1 MB allocation on a 192 KB
# heap), close 1006 on invalid UTF-8, and differ per runtime. Here every
# limit is checked at the frame header, before a byte of payload is kept:
# a message over max_size is refused with close code 1009, a binary one
# with 1003, invalid UTF-8 with 1007, anything else out of the RFC with
# 1002. A text message is kept in one buffer of its announced size
# (fragments: one buffer each, at most MAX_FRAGMENTS of them).
import binascii
import hashlib

from agent.codecs import http_head, utf8

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
CONT, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
# close codes (RFC 6455 section 7.4)
NORMAL = 1000
GOING_AWAY = 1001
PROTOCOL_ERROR = 1002
UNSUPPORTED_DATA = 1003
NO_STATUS = 1005
INVALID_DATA = 1007
POLICY = 1008
TOO_BIG = 1009
MAX_HANDSHAKE = 4096     # bytes of the server's 101 response head
MAX_FRAGMENTS = 64
MAX_EVENTS = 8           # events handed out by one feed(); pending() says more wait
MAX_REASON = 123         # a close reason fits a control frame (125) with its code

# Events are (kind, value) tuples: a namedtuple class costs about a
# kilobyte of heap each on MicroPython. MESSAGE: the text; PING, PONG: the
# payload; CLOSE: (code, reason).
MESSAGE, PING_EV, PONG_EV, CLOSE_EV = "message", "ping", "pong", "close"

_HEAD, _PAYLOAD, _CLOSED = 0, 1, 2


class WsError(ValueError):
    """The peer broke the protocol: close with `code`, saying `reason`."""

    def __init__(self, code, reason):
        super().__init__(reason)
        self.code = code
        self.reason = reason


class HandshakeError(ValueError):
    """The server's answer to the opening handshake is not an upgrade."""


def _b64(data):
    return binascii.b2a_base64(data).strip().decode()


def new_key(random16):
    """The Sec-WebSocket-Key for 16 random bytes."""
    return _b64(random16)


def accept_for(key):
    """The Sec-WebSocket-Accept a server must answer to `key`."""
    return _b64(hashlib.sha1(key.encode() + GUID).digest())


def handshake(host, port, path, key, default_port=80, headers=()):
    """The bytes of the opening handshake (an HTTP/1.1 GET upgrade)."""
    return http_head.request("GET", host, port, path, None,
                          [("Upgrade", "websocket"), ("Sec-WebSocket-Key", key),
                           ("Sec-WebSocket-Version", "13")] + list(headers),
                          default_port, connection="Upgrade")


def check_response(buf, key):
    """Bytes received so far after the handshake -> None while the
    response head is incomplete, else the bytes after it (the first frames,
    if the server sent them at once). HandshakeError when the server did
    not accept the upgrade, or answered more than MAX_HANDSHAKE bytes of head."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        if len(buf) > MAX_HANDSHAKE:
            raise HandshakeError("handshake response head over %d bytes" % MAX_HANDSHAKE)
        return None
    if end > MAX_HANDSHAKE:
        raise HandshakeError("handshake response head over %d bytes" % MAX_HANDSHAKE)
    try:
        _, status, reason, headers = http_head.parse_head(bytes(buf[:end]))
    except http_head.HttpError as e:
        raise HandshakeError("not an HTTP response to the handshake: %s" % e)
    if status != 101:
        hint = " (refused: check the token)" if status in (401, 403) else ""
        raise HandshakeError("server answered HTTP %d %s instead of switching to WebSocket%s"
                             % (status, reason[:60], hint))
    if headers.get("upgrade", "").lower() != "websocket":
        raise HandshakeError("101 response without 'Upgrade: websocket'")
    if "upgrade" not in [t.strip() for t in headers.get("connection", "").lower().split(",")]:
        raise HandshakeError("101 response without 'Connection: Upgrade'")
    if headers.get("sec-websocket-accept", "") != accept_for(key):
        raise HandshakeError("wrong Sec-WebSocket-Accept: the server did not answer this handshake")
    for name in ("sec-websocket-extensions", "sec-websocket-protocol"):
        if name in headers:
            # None was offered: frames would not mean what we read them as.
            raise HandshakeError("server chose %s %r, which was not offered" % (name, headers[name][:40]))
    return bytes(buf[end + 4:])


# -- frames out ------------------------------------------------------------------
def frame(opcode, payload, mask_key):
    """One final frame, masked with the 4-byte `mask_key` (a client must
    mask every frame, with a key the network cannot predict)."""
    n = len(payload)
    if n < 126:
        head = bytes((0x80 | opcode, 0x80 | n))
    elif n < 65536:
        head = bytes((0x80 | opcode, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, 0x80 | 127)) + n.to_bytes(8, "big")
    at = len(head) + 4
    out = bytearray(at + n)
    out[:len(head)] = head
    out[len(head):at] = mask_key
    # XOR 256 bytes at a time as big integers: far faster than a byte loop
    # on MicroPython, and no more than a few hundred bytes of garbage.
    stream = int.from_bytes(bytes(mask_key) * 64, "big")
    for i in range(0, n, 256):
        part = payload[i:i + 256]
        m = len(part)
        key = stream if m == 256 else stream >> (8 * (256 - m))
        out[at + i:at + i + m] = (int.from_bytes(part, "big") ^ key).to_bytes(m, "big")
    return out


def close_payload(code, reason=""):
    """The body of a close frame: the code, then a reason cut to fit."""
    data = reason.encode()[:MAX_REASON]
    while data and not utf8.valid(memoryview(data), 0, len(data)):
        data = data[:-1]   # never cut a character in two
    return code.to_bytes(2, "big") + data


def _close_code_ok(code):
    # Codes an endpoint may send (RFC 6455 7.4.1 and the IANA registry);
    # 1005, 1006 and 1015 are for reporting only, never on the wire.
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999


# -- frames in ----------------------------------------------------------------------
class FrameParser:
    """feed(bytes) -> a list of events (MESSAGE, PING_EV, PONG_EV, CLOSE_EV); raises
    WsError when the server breaks the protocol or a limit. After a Close
    or a WsError the parser is done (state _CLOSED) and takes nothing more.
    `wanted()` says how much it is worth reading next."""

    def __init__(self, max_size, chunk=2048, as_bytes=False):
        self.max_size = max_size
        self.chunk = chunk
        # MESSAGE as the payload's bytearray, checked to be UTF-8 but not
        # decoded, for a caller that parses JSON from bytes: a message of
        # several KB then needs one block of its size, not two.
        self._as = utf8.check if as_bytes else utf8.decode
        self._state = _HEAD
        self._buf = b""          # bytes of a frame header not yet complete (or not yet parsed)
        self._more = False       # feed() stopped at MAX_EVENTS with frames left in _buf
        self._op = 0
        self._fin = False
        self._payload = None     # the frame's payload, filled as it arrives
        self._fill = 0
        self._parts = None       # a fragmented text message so far (a bytearray)
        self._count = 0          # how many fragments it came in
        self._size = 0           # its size

    @property
    def closed(self):
        return self._state == _CLOSED

    def pending(self):
        """Whether bytes already received wait to be parsed: feed(b"")
        before reading more."""
        return self._more and self._state != _CLOSED

    def wanted(self):
        """Bytes worth reading next: the rest of a payload, in chunks."""
        if self._state == _PAYLOAD:
            return max(1, min(len(self._payload) - self._fill, self.chunk))
        return self.chunk

    def feed(self, data):
        if self._state == _CLOSED:
            return []
        buf = self._buf + bytes(data) if self._buf else data
        self._more = False
        if not len(buf):
            return []
        self._buf = b""
        events = []
        pos = 0
        end = len(buf)
        try:
            while self._state != _CLOSED:
                if self._state == _HEAD:
                    if len(events) >= MAX_EVENTS:
                        # The rest waits for the next feed(): a kilobyte of
                        # empty pings would otherwise be 500 events at once.
                        self._buf = bytes(buf[pos:])
                        self._more = pos < end
                        break
                    nxt = self._header(buf, pos)
                    if nxt < 0:
                        self._buf = bytes(buf[pos:])
                        break
                    pos = nxt
                    if not len(self._payload):
                        self._complete(events)
                    continue
                take = min(end - pos, len(self._payload) - self._fill)
                if take <= 0:
                    break
                self._payload[self._fill:self._fill + take] = memoryview(buf)[pos:pos + take]
                self._fill += take
                pos += take
                if self._fill == len(self._payload):
                    self._complete(events)
        except WsError:
            self._state = _CLOSED
            self._payload = self._parts = None
            raise
        return events

    def _header(self, buf, pos):
        """Parse a frame header at pos -> the position after it, or -1
        when it is not all there yet. Every check happens here, before a
        byte of payload is kept."""
        if len(buf) - pos < 2:
            return -1
        b0 = buf[pos]
        b1 = buf[pos + 1]
        at = pos + 2
        n = b1 & 0x7F
        if n >= 126:
            width = 2 if n == 126 else 8
            if len(buf) - at < width:
                return -1
            n = int.from_bytes(bytes(buf[at:at + width]), "big")
            at += width
            if (width == 2 and n < 126) or (width == 8 and (n < 65536 or n >> 63)):
                raise WsError(PROTOCOL_ERROR, "frame length not in its shortest form")
        op = b0 & 0x0F
        fin = bool(b0 & 0x80)
        if b0 & 0x70:
            raise WsError(PROTOCOL_ERROR, "reserved bits set (no extension was agreed)")
        if b1 & 0x80:
            raise WsError(PROTOCOL_ERROR, "masked frame from the server")
        if op >= 0x8:
            if op not in (CLOSE, PING, PONG):
                raise WsError(PROTOCOL_ERROR, "unknown control opcode %d" % op)
            if not fin or n > 125:
                raise WsError(PROTOCOL_ERROR, "control frame fragmented or over 125 bytes")
        else:
            if op == BINARY:
                raise WsError(UNSUPPORTED_DATA, "binary messages are not accepted (text only)")
            if op == CONT and self._parts is None:
                raise WsError(PROTOCOL_ERROR, "continuation frame without a message to continue")
            if op == TEXT and self._parts is not None:
                raise WsError(PROTOCOL_ERROR, "new message before the fragmented one ended")
            if op not in (CONT, TEXT):
                raise WsError(PROTOCOL_ERROR, "unknown data opcode %d" % op)
            if self._size + n > self.max_size:
                raise WsError(TOO_BIG, "message of %d bytes or more over the %d byte limit"
                              % (self._size + n, self.max_size))
            if not fin and self._parts is not None and self._count + 1 >= MAX_FRAGMENTS:
                raise WsError(TOO_BIG, "message in more than %d fragments" % MAX_FRAGMENTS)
        self._op = op
        self._fin = fin
        self._payload = bytearray(n)
        self._fill = 0
        self._state = _PAYLOAD
        return at

    def _complete(self, events):
        payload = self._payload
        op = self._op
        self._payload = None
        self._state = _HEAD
        if op == PING:
            events.append((PING_EV, bytes(payload) if payload else b""))
        elif op == PONG:
            events.append((PONG_EV, bytes(payload) if payload else b""))
        elif op == CLOSE:
            events.append(self._close(payload))
            self._state = _CLOSED
        elif op == TEXT and self._fin:
            events.append((MESSAGE, self._text(payload)))
        else:
            # Fragments go into one buffer as they come: a list of pieces
            # joined at the end needs the message's size twice over.
            if self._parts is None:
                self._parts = payload
                self._count = 1
            else:
                self._parts.extend(payload)
                self._count += 1
            self._size = len(self._parts)
            if self._fin:
                data = self._parts
                self._parts = None
                self._size = 0
                events.append((MESSAGE, self._text(data)))

    def _close(self, payload):
        if not payload:
            return CLOSE_EV, (NO_STATUS, "")
        if len(payload) == 1:
            raise WsError(PROTOCOL_ERROR, "close frame with a 1-byte body")
        code = (payload[0] << 8) | payload[1]
        if not _close_code_ok(code):
            raise WsError(PROTOCOL_ERROR, "close code %d is not one a peer may send" % code)
        try:
            reason = utf8.decode(payload[2:])
        except ValueError:
            raise WsError(INVALID_DATA, "close reason is not valid UTF-8")
        return CLOSE_EV, (code, reason)

    def _text(self, payload):
        try:
            return self._as(payload)
        except ValueError:
            raise WsError(INVALID_DATA, "text message is not valid UTF-8")
