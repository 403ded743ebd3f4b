# Hostile-input targets for every agent codec (agent/codecs/), shared by
# the two fuzzers: tests/host/test_fuzz_codecs.py (hypothesis, CPython) and
# tests/mp/test_fuzz_codecs.py (a seeded corpus made on the host, fed
# inside MicroPython). Runs on both runtimes: no typing, no f-strings that
# MicroPython lacks, no CPython-only modules.
#
# A target takes one input (bytes) and feeds it to its codec the way the
# agent does. It lets only the codec's documented error out (caught here)
# and checks the shape of whatever the codec answers; anything else (another
# exception type, an event the codec may not produce, an answer out of its
# documented range, a call slower than SLOW_MS) is a defect, raised as
# Broken or as the unexpected exception itself. The inputs come from
# tests/fuzz_corpus.py (host side: seeds, mutators, the corpus).
import json
import sys
import time

from agent.codecs import cbor, cloudsolution, http11, json_ws, url, utf8, values, websocket, xml_bio, xml_flat, zfm
from agent.codecs.session import (
    NOTHING,
    Ack,
    AuthFailed,
    BadInput,
    Command,
    LocalProtocolError,
    Registered,
    RemoteProtocolError,
    Reregister,
    Send,
    ServerError,
)

MICROPYTHON = sys.implementation.name == "micropython"
SLOW_MS = 2000       # one input through one codec: far more than any takes
MAX_FRAME = 16384    # the site default (README, max_frame)
ROUND_TRIP_MAX = 4096   # decode(encode(decode(x))) only for inputs this small (encoding is not a hostile edge)
SEP = b"\x1e"        # in a session target's input: splits it into messages fed in turn
MAX_MESSAGES = 8


class Broken(AssertionError):
    """A codec answered something its contract does not allow."""


def check(ok, what, data=b""):
    if not ok:
        raise Broken("%s (input %r)" % (what, bytes(data[:120])))


def _ticks():
    if MICROPYTHON:
        return time.ticks_ms()
    return int(time.monotonic() * 1000)


def _elapsed(t0):
    if MICROPYTHON:
        return time.ticks_diff(time.ticks_ms(), t0)
    return _ticks() - t0


def as_text(data):
    """An input as the text a session receives. Laxer than the transport
    (which refuses invalid UTF-8 with close 1007): on MicroPython a str may
    hold what strict UTF-8 forbids, on CPython invalid bytes become U+FFFD.
    None when the runtime cannot make a str of it at all."""
    try:
        return str(data, "utf-8")
    except UnicodeError:
        if MICROPYTHON:
            return None
        return data.decode("utf-8", "replace")


def _messages(data):
    return data.split(SEP)[:MAX_MESSAGES]


# -- CBOR (journal records on flash): CBORError only ------------------------------------

def same(a, b):
    """Equality that also tells types apart (True != 1), NaN equal to NaN."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (a != a and b != b) or a == b
    if isinstance(a, list):
        if len(a) != len(b):
            return False
        for i in range(len(a)):
            if not same(a[i], b[i]):
                return False
        return True
    if isinstance(a, dict):
        if len(a) != len(b):
            return False
        for k in a:
            if k not in b or not same(a[k], b[k]):
                return False
        return True
    return a == b


def target_cbor(data):
    try:
        value = cbor.decode(data)
    except cbor.CBORError:
        return
    # What decodes re-encodes (when it holds only what we write) to the same value.
    try:
        again = cbor.encode(value)
    except cbor.CBORError:
        return   # e.g. a bytes map key: read, but never written by the journal
    check(same(cbor.decode(again), value), "cbor: decode(encode(v)) != v", data)


def target_cbor_stream(data):
    # Records stored one after another, read in turn from any offset.
    pos = data[0] % 4 if data else 0
    for _ in range(16):
        try:
            _, nxt = cbor.decode_from(data, pos)
        except cbor.CBORError:
            return
        check(pos < nxt <= len(data), "cbor: decode_from went from %d to %d" % (pos, nxt), data)
        if nxt == len(data):
            return
        pos = nxt


# -- the JSON WebSocket and XML biometric sessions: never raise ------------------------

_EVENTS = (Registered, Ack, AuthFailed, Reregister, ServerError, Command, Send, BadInput)


def check_event(ev, data):
    check(ev is NOTHING or isinstance(ev, _EVENTS), "session: %r is not an event" % (ev,), data)
    if isinstance(ev, Ack):
        check(isinstance(ev.record_id, int) and ev.record_id >= 1, "ack of %r" % (ev.record_id,), data)
    elif isinstance(ev, BadInput):
        check(isinstance(ev.counter, str) and isinstance(ev.message, str), "BadInput fields", data)
        check(len(ev.message) < 400, "BadInput message of %d characters" % len(ev.message), data)
    elif isinstance(ev, Command):
        check(ev.name is None or (isinstance(ev.name, str) and 0 < len(ev.name) <= 32),
              "command name %r" % (ev.name,), data)
    elif isinstance(ev, Send):
        check(isinstance(ev.text, str), "Send of a non-text", data)


def _feed(session, data, registered):
    session.hello()
    if registered:
        check(isinstance(session.receive(_REGISTERED[type(session)]), Registered), "no registration", data)
    for message in _messages(data):
        text = as_text(message)
        if text is None:
            text = message   # what the transport would drop: the frame guard refuses bytes
        check_event(session.receive(text), data)
    session.close()
    try:
        session.receive("{}")
    except LocalProtocolError:
        pass
    else:
        raise Broken("receive() on a closed session did not raise LocalProtocolError")


_REGISTERED = {
    json_ws.Session: '{"type": "registered", "acks": true}',
    xml_bio.Session: "<Response><Result>success</Result><Session>s1</Session></Response>",
}


def target_json_ws(data):
    _feed(json_ws.Session("door-1", "tok", MAX_FRAME), data, False)
    _feed(json_ws.Session("door-1", "tok", MAX_FRAME), data, True)


def target_xml_bio(data):
    _feed(xml_bio.Session("FK1", "cloud", MAX_FRAME), data, False)
    _feed(xml_bio.Session("FK1", "cloud", MAX_FRAME), data, True)


# -- flat XML: XmlError only -------------------------------------------------------------

def target_xml_flat(data):
    for doc in (data, as_text(data)):
        if doc is None:
            continue
        try:
            root, fields = xml_flat.decode(doc, MAX_FRAME, 64)
        except xml_flat.XmlError:
            continue
        check(xml_flat.is_name(root) and isinstance(fields, dict) and len(fields) <= 64, "xml: shape", data)
        for tag in fields:
            check(xml_flat.is_name(tag) and isinstance(fields[tag], str), "xml: field %r" % (tag,), data)
        if len(data) > ROUND_TRIP_MAX:
            continue
        # What decodes re-encodes to the same document.
        again = xml_flat.encode(root, list(fields.items()))
        check(xml_flat.decode(again, 1 << 20) == (root, fields), "xml: decode(encode(d)) != d", data)


# -- CloudSolution replies: RemoteProtocolError only --------------------------------------

def _check_reply(r, data):
    check(isinstance(r, cloudsolution.Reply) and r.ok in (True, False), "reply: shape", data)
    for n in (r.count, r.logindex):
        check(n is None or (isinstance(n, int) and n >= 0), "reply: count/logindex %r" % (n,), data)
    check(r.reason is None or isinstance(r.reason, str), "reply: reason", data)
    check(r.access is None or isinstance(r.access, int), "reply: access", data)
    check(r.command is None or isinstance(r.command, Command), "reply: command", data)
    if r.command is not None:
        check_event(r.command, data)
        # the word to echo, or (word, what its answer needs: getuserinfo's backupnum ...)
        word = r.command.id[0] if isinstance(r.command.id, tuple) and len(r.command.id) == 2 else r.command.id
        check(isinstance(word, str) and 0 < len(word) <= 32, "reply: command word", data)
    upto = cloudsolution.acked_upto(r, 5, 3)
    check(upto is None or 5 <= upto <= 7, "reply: acknowledges %r of records 5-7" % (upto,), data)


def target_cloudsolution(data):
    text = as_text(data)
    if text is None:
        return
    try:
        obj = json.loads(text)
    except ValueError:
        return   # the HTTP client turns a body that is not JSON into a closed link
    except (RuntimeError, MemoryError):
        # Too deep or too big to parse: the HTTP client's json.loads, before
        # this codec (a reported defect: tests/host/test_fuzz_codecs.py).
        return
    for cmd in ("reg", "sendlog", "checklive", "opendoor"):
        session = cloudsolution.Session("ZX1", gmt=8, token="t")
        session.hello()
        try:
            _check_reply(session.reply(cmd, obj), data)
        except RemoteProtocolError:
            pass
    if isinstance(obj, dict):
        check_event(cloudsolution.server_command(obj, 8), data)


# -- HTTP/1.1 responses: HttpError only ------------------------------------------------------

def _pieces(data):
    # Split as a socket might deliver it; the first byte picks the chunk size.
    step = 1 + (data[0] % 97 if data else 0)
    for i in range(0, len(data), step):
        yield data[i:i + step]


def target_http11(data):
    parser = http11.ResponseParser(max_header=2048, max_body=4096)
    try:
        resp = None
        for piece in _pieces(data):
            resp = parser.feed(piece)
            if resp is not None:
                break
        if resp is None:
            resp = parser.eof()
    except http11.HttpError:
        return
    check(isinstance(resp, http11.Response) and 0 <= resp.status <= 999, "http: status", data)
    check(isinstance(resp.body, bytes) and len(resp.body) <= 4096, "http: body of %d bytes" % len(resp.body), data)
    check(resp.keep_alive in (True, False) and isinstance(resp.headers, dict), "http: headers", data)


# -- ZFM packets: never raise, only whole valid packets, a bounded buffer ----------------

def target_zfm(data):
    parser = zfm.Parser()
    got = []
    for piece in _pieces(data):
        parser.feed(piece)
        for address, pid, payload in parser.packets():
            check(0 <= address <= 0xFFFFFFFF and pid in (zfm.CMD, zfm.DATA, zfm.ACK, zfm.END), "zfm: header", data)
            check(len(payload) <= zfm.MAX_PAYLOAD, "zfm: payload of %d bytes" % len(payload), data)
            got.append(zfm.encode(pid, payload, address))
        # Whatever is kept is at most one packet still arriving.
        check(len(parser._buf) < 9 + zfm.MAX_PAYLOAD + 2, "zfm: %d bytes kept" % len(parser._buf), data)
    # Each packet was in the input as it is re-encoded (the checksum held).
    for pkt in got:
        check(pkt in data, "zfm: a packet that was not in the input", data)


# -- WebSocket frames and handshake: WsError / HandshakeError only --------------------------

WS_KEY = "dGhlIHNhbXBsZSBub25jZQ=="   # RFC 6455's sample key


def target_websocket(data):
    parser = websocket.FrameParser(MAX_FRAME, chunk=512)
    try:
        for piece in _pieces(data):
            events = parser.feed(piece)
            check(len(events) <= websocket.MAX_EVENTS, "ws: %d events from one feed" % len(events), data)
            while parser.pending():
                more = parser.feed(b"")
                check(len(more) <= websocket.MAX_EVENTS, "ws: %d events from one feed" % len(more), data)
                events += more
            for kind, value in events:
                if kind == websocket.MESSAGE:
                    check(isinstance(value, str) and len(value) <= MAX_FRAME, "ws: message", data)
                    check(utf8.encodes(value), "ws: a message that is not UTF-8 text", data)
                elif kind == websocket.CLOSE_EV:
                    code, reason = value
                    check(isinstance(code, int) and isinstance(reason, str), "ws: close %r" % (value,), data)
                else:
                    check(kind in (websocket.PING_EV, websocket.PONG_EV) and len(value) <= 125, "ws: event", data)
            check(1 <= parser.wanted() <= 512, "ws: wanted %d" % parser.wanted(), data)
    except websocket.WsError as e:
        check(isinstance(e.code, int) and 1000 <= e.code <= 1011 and e.reason, "ws: error %r" % (e,), data)
        check(parser.closed and parser.feed(b"\x81\x01a") == [], "ws: parser still open after an error", data)


def target_ws_handshake(data):
    got = b""
    try:
        for piece in _pieces(data):
            got += piece
            rest = websocket.check_response(got, WS_KEY)
            if rest is not None:
                check(isinstance(rest, bytes) and len(rest) < len(got), "handshake: rest", data)
                return
    except websocket.HandshakeError:
        return


def target_utf8(data):
    ok = utf8.valid(memoryview(data), 0, len(data))
    try:
        text = utf8.decode(data)
    except ValueError:
        check(not ok, "utf8: valid() and decode() disagree", data)
        return
    check(ok and utf8.encodes(text) and text.encode() == data, "utf8: decode() is not strict", data)
    if not MICROPYTHON:   # CPython's decoder is the reference for strict UTF-8
        try:
            data.decode("utf-8")
            strict = True
        except UnicodeDecodeError:
            strict = False
        check(strict == ok, "utf8: differs from CPython's strict decoder", data)


# -- addresses and values: ValueError / None only ---------------------------------------------

def target_url(data):
    text = as_text(data)
    if text is None:
        return
    for call in (lambda: url.split_hostport(text), lambda: url.split_hostport(text, 80), lambda: url.split_url(text)):
        try:
            got = call()
        except ValueError:
            continue
        host, port = got[-3:-1] if len(got) == 4 else got
        check(isinstance(host, str) and host and isinstance(port, int) and 0 <= port <= 65535,
              "url: %r" % (got,), data)


def target_values(data):
    text = as_text(data)
    if text is None:
        return
    n = values.as_int(text)
    check(n is None or (values.is_int(n) and -10 ** 18 < n < 10 ** 18), "as_int: %r" % (n,), data)
    got = values.parse_stamp(text)
    if got is not None:
        (y, mo, d, h, mi, s), zone = got
        check(1970 <= y <= 9999 and 1 <= mo <= 12 and 1 <= d <= 31 and 0 <= h <= 23 and 0 <= mi <= 59
              and 0 <= s <= 60, "parse_stamp: %r" % (got,), data)
        check(zone is None or isinstance(zone, (int, float)), "parse_stamp zone: %r" % (zone,), data)
        wall = values.normal_wall(text)
        check(values.parse_wall(wall) == got[0], "normal_wall does not read back: %r" % (wall,), data)
    epoch = values.wall_epoch(text, 8, trust_zone=True)
    check((epoch is None) == (got is None), "wall_epoch and parse_stamp disagree", data)
    for v in (text, data):
        check(values.as_int(v) is None or isinstance(v, str), "as_int of bytes", data)


TARGETS = {
    "cbor": target_cbor,
    "cbor_stream": target_cbor_stream,
    "json_ws": target_json_ws,
    "xml_bio": target_xml_bio,
    "xml_flat": target_xml_flat,
    "cloudsolution": target_cloudsolution,
    "http11": target_http11,
    "zfm": target_zfm,
    "websocket": target_websocket,
    "ws_handshake": target_ws_handshake,
    "utf8": target_utf8,
    "url": target_url,
    "values": target_values,
}


def run(name, data):
    """One input through one target, timed: Broken (or the unexpected
    exception) when the codec breaks its contract or takes over SLOW_MS."""
    t0 = _ticks()
    TARGETS[name](data)
    ms = _elapsed(t0)
    check(ms <= SLOW_MS, "%s took %d ms" % (name, ms), data)
