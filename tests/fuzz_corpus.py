"""Hostile inputs for the codec targets of tests/fuzz_targets.py, made on
the host (CPython): structure-aware mutations of each target's valid
messages (SEEDS) plus arbitrary bytes. One mutator serves two masters:
hypothesis draws its choices in tests/host/test_fuzz_codecs.py, and a
seeded random.Random draws them for the corpus that
tests/mp/test_fuzz_codecs.py feeds to the codecs inside MicroPython
(`write_corpus`, one JSON line per input)."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path

import fuzz_targets as ft

from agent.codecs import cbor, xml_flat, zfm

MP_SEED = 2026          # the corpus tests/mp/test_fuzz_codecs.py runs (and the CPython test too)
MP_PER_TARGET = 500
MAX_INPUT = 2048       # bytes of one mutated input (oversize ones are made on purpose, below)
INTERESTING = (0x00, 0x01, 0x0A, 0x0D, 0x1E, 0x20, 0x22, 0x26, 0x2D, 0x3A, 0x3C, 0x3E, 0x5B, 0x5C, 0x7B, 0x7F,
               0x80, 0xBF, 0xC0, 0xED, 0xEF, 0xF4, 0xFF)

Choose = Callable[[int], int]   # n -> an int in [0, n)


# -- valid messages, where mutations start ------------------------------------------------

def _cbor_seeds():
    recs = [[1, 1781255730, "punch", None, {"user": "7", "time": "2026-06-12T09:15:30", "gmt": 8}],
            [2, 1781255731, "telemetry", None, {"temperature": 21.5, "humidity": 40.25}],
            [3, 0, "event", "door_opened", {"door": "front", "ok": True, "n": -(2 ** 63), "b": b"\x00\xff"}],
            {"cursor": 18446744073709551615, "list": [None, False, [], {}], "s": "\u00e9\u20ac\U0001f600"}]
    out = [cbor.encode(r) for r in recs]
    out.append(b"".join(out))
    # what we accept beyond what we write: float16/32, indefinite items, tags, undefined
    out.append(b"\x9f\xf9\x3c\x00\xfa\x3f\x80\x00\x00\x7f\x61a\x62bc\xff\x5f\x41\x00\xff\xc1\x1a\x00\x01\x00\x00"
               b"\xf7\xbf\x61k\x01\xff\xff")
    return out


def _xml(root, fields):
    return xml_flat.encode(root, fields).encode()


XML_SEEDS = [
    _xml("Response", [("Result", "success"), ("Session", "sess_1"), ("DeviceSerialNo", "FK1")]),
    b"<Message><Response>Register</Response><Result>OK</Result><Session> s </Session></Message>",
    _xml("Response", [("Operation", "TimeLog_v2"), ("LogId", "12"), ("Result", "success")]),
    _xml("Response", [("Operation", "AdminLog_v2"), ("LogId", "13"), ("Result", "Fail"), ("Reason", "full")]),
    b"<Message><Response>TimeLog_v2</Response><TransID>14</TransID><Result>Fail</Result></Message>",
    _xml("Response", [("Result", "FailUnknownToken")]),
    _xml("Response", [("Operation", "KeepAlive"), ("Result", "success")]),
    _xml("Request", [("Operation", "LockControl"), ("Mode", "1"), ("TransID", "T1")]),
    _xml("Request", [("Operation", "LockControl"), ("Mode", "normalopen"), ("TransID", "T2")]),
    _xml("Request", [("Operation", "GetDeviceStatus"), ("TransID", "T3")]),
    _xml("Request", [("Operation", "SetTime"), ("Time", "2026-06-12T09:15:30+08:00"), ("TransID", "T4")]),
    b"<Message><Request>SetTime</Request><DevTime>20260612091530</DevTime></Message>",
    _xml("Request", [("Operation", "Reboot"), ("TransID", "T5")]),
    _xml("Request", [("Operation", "SetUserData"), ("UserID", "1001"), ("Name", "Ann"), ("Enabled", "Yes"),
                     ("Card", "12345678"), ("PWD", "0042"), ("UserPeriod_Used", "Yes"),
                     ("UserPeriod_Start", "2026-01-01T08:00:00"), ("TransID", "T6")]),
    _xml("Request", [("Operation", "GetNextUserData"), ("UserID", "7"), ("TransID", "T7")]),
    b'<?xml version="1.0" encoding="UTF-8"?>\n<!-- c --><Request><Operation>KeepAlive</Operation>'
    b"<Note>a &amp; b &#x41;&#65; &lt;&gt;&quot;&apos;</Note><Empty/></Request>",
]

JSON_SEEDS = [
    b'{"type": "registered", "device_id": "door-1", "acks": true}',
    b'{"type": "ack", "id": 41}',
    b'{"type": "ping"}',
    b'{"type": "pong"}',
    b'{"type": "error", "message": "authentication failed"}',
    b'{"type": "command", "device_id": "door-1", "command": "unlock", "payload": {"duration_ms": 5000}, "id": "c1"}',
    b'{"type": "command", "command": "set", "payload": {"property": "unlock_ms", "value": 700}, "id": 7}',
    b'{"type": "command", "command": "set_time", "payload": {"time": "2026-11-23T09:00:00"}}',
    b'{"type": "device_status", "device_id": "other", "status": "online"}',
    b'{"type": "telemetry", "device_id": "other", "payload": {"t": 1.5e3, "h": [1, -2, null]}}',
]

CLOUDSOLUTION_SEEDS = [
    b'{"ret": "reg", "result": true, "cloudtime": "2026-06-12T10:30:00Z", "nosenduser": true}',
    b'{"ret": "sendlog", "result": true, "count": 3, "logindex": 5, "cloudtime": "2026-06-12T10:30:00Z",'
    b' "access": 1}',
    b'{"ret": "sendlog", "result": false, "reason": "conflict: punch 5", "cloudtime": "2026-06-12 18:30:00"}',
    b'{"ret": "checklive", "result": 1, "cloudtime": "2026-06-12T10:30:00+08:00",'
    b' "cmd": {"cmd": "opendoor", "doornum": 1}}',
    b'{"ret": "checklive", "result": true, "cmd": "settime", "cloudtime": "2026-06-12T10:30:00Z"}',
    b'{"cmd": "checklive", "result": true, "count": 2.0, "logindex": "5"}',
    b'{"ret": "reg", "result": true, "cmd": {"cmd": "getnewlog", "stn": true}}',
    b'{"ret": "checklive", "result": true, "cmd": {"cmd": "setuserinfo", "enrollid": 5, "name": "Bo",'
    b' "backupnum": 11, "admin": 0, "record": 12345678, "enable": 1}}',
    b'{"ret": "checklive", "result": true, "cmd": {"cmd": "getuserlist", "stn": false}}',
    b'{"ret": "checklive", "result": true, "cmd": {"cmd": "setdevlock", "opendelay": 5, "doorsensor": 1,'
    b' "alarmdelay": 30, "antpass": 0}}',
]

HTTP_SEEDS = [
    b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"a": true}',
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;x=1\r\nWiki\r\n5\r\npedia\r\n0\r\nT: 1\r\n\r\n",
    b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\nuntil the close",
    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n",
    b"HTTP/1.1 400 Bad Request\r\nContent-Length: 2\r\nX-A: 1\r\nX-A: 2\r\n\r\n{}HTTP/1.1 200 OK\r\n",
]

ZFM_SEEDS = [
    zfm.ack(zfm.OK, zfm.u16(7) + zfm.u16(120)),
    zfm.command(zfm.SEARCH, b"\x01", zfm.u16(0), zfm.u16(300), address=1),
    b"boot garbage \xef" + zfm.encode(zfm.DATA, bytes(range(256))) + zfm.encode(zfm.END, b"\x00" * 8),
    zfm.ack(zfm.NO_FINGER) + zfm.ack(zfm.OK) + b"\xef\x01\xff",
]

def server_frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    """A frame as a server sends it (unmasked), the length in its shortest form."""
    n = len(payload)
    head = bytes((0x80 * fin | opcode,))
    if n < 126:
        head += bytes((n,))
    elif n < 65536:
        head += bytes((126,)) + n.to_bytes(2, "big")
    else:
        head += bytes((127,)) + n.to_bytes(8, "big")
    return head + payload


WS_SEEDS = [
    server_frame(0x1, b'{"type": "ping"}'),
    server_frame(0x1, "h\u00e9llo \U0001f600".encode()) + server_frame(0x9, b"hb") + server_frame(0xA, b""),
    server_frame(0x1, b"frag", fin=False) + server_frame(0x9, b"") + server_frame(0x0, b"ment", fin=False)
    + server_frame(0x0, b"ed"),
    server_frame(0x1, b"x" * 300),
    server_frame(0x8, b"\x03\xe8bye"),
    server_frame(0x8, b""),
]
WS_HANDSHAKE_SEEDS = [
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n" + server_frame(0x1, b"early"),
    b"HTTP/1.1 101 OK\r\nupgrade: WebSocket\r\nconnection: keep-alive, upgrade\r\n"
    b"sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
    b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n",
]
UTF8_SEEDS = ["plain", "\u00e9\u20ac\U0001f600\u07ff\uffff\U0010ffff", "\x00\x7f"]

URL_SEEDS = [b"127.0.0.1:8780", b"[::1]:8080", b"localhost", b"ws://127.0.0.1:8780/ws", b"https://bench.example/base/",
             b"wss://[fe80::1]:443/", b"http://h:65535"]

VALUE_SEEDS = [b"2026-05-12T09:15:30Z", b"20260512091530", b"2026/05/12 09:15:30.123+08:00",
               b"2013-05-06-T11:09:30-0530", b"  -42 ", b"+7", b"2024-02-29 23:59:60", b"1970-01-01T00:00:00"]

SEEDS = {
    "cbor": _cbor_seeds(),
    "cbor_stream": None,   # the same as cbor's
    "json_ws": JSON_SEEDS,
    "xml_bio": XML_SEEDS,
    "xml_flat": XML_SEEDS,
    "cloudsolution": CLOUDSOLUTION_SEEDS,
    "http11": HTTP_SEEDS,
    "zfm": ZFM_SEEDS,
    "websocket": WS_SEEDS,
    "ws_handshake": WS_HANDSHAKE_SEEDS,
    "utf8": [t.encode() for t in UTF8_SEEDS] + [b"\xed\xa0\x80", b"\xc0\xaf", b"\xf4\x90\x80\x80", b"\xe0\x80"],
    "url": URL_SEEDS,
    "values": VALUE_SEEDS,
}
SEEDS["cbor_stream"] = SEEDS["cbor"]

# Tokens the mutators splice in: what makes each format dangerous.
TOKENS = {
    "cbor": [b"\x9f", b"\xbf", b"\xff", b"\x1b\xff\xff\xff\xff\xff\xff\xff\xff",
             b"\x5b\x00\x00\x00\x01\x00\x00\x00\x00", b"\x81" * 40, b"\xc6" * 40, b"\x7f",
             b"\x62\xed\xa0", b"\xf8\x20", b"\xfc", b"\x1c", b"\xf9\x7c\x01"],
    "json": [b"[" * 70, b"{", b'{"a":' * 40, b"1e400", b"-1e999", b"NaN", b"Infinity", b"9" * 40, b"-0", b'"\\ud800"',
             b'"\\udfff\\ud800"', b"\xed\xa0\x80", b"\xff", b"\x00", b'"type": "command"', b'"id": -1',
             b'"id": 18446744073709551616', b'"command": "' + b"x" * 40 + b'"', b"null", b"true", b'"payload": []',
             b'"acks": "yes"', b'"\\u0000"', b",,", b"}"],
    "xml": [b"<!DOCTYPE a [<!ENTITY x 'y'>]>", b"&x;", b"&#xD800;", b"&#0;", b"&#1114112;", b"&#x41", b"<![CDATA[x]]>",
            b"<?pi x?>", b"<!--", b"-->", b"<a>", b"</a>", b"<a/>", b'<a b="1">', b"&amp;", b"\r\n", b"\x00",
            b"<Operation>LockControl</Operation>", b"<Mode>99999999999999999999</Mode>", b"<LogId>-5</LogId>",
            b"<Result>Fail</Result>", b"<Reason>unknown token</Reason>", b"<TransID>" + b"9" * 40 + b"</TransID>"],
    "http": [b"\r\n", b"\r\n\r\n", b"Content-Length: 99999999999\r\n", b"Content-Length: -1\r\n",
             b"Transfer-Encoding: chunked\r\n", b"Transfer-Encoding: gzip\r\n", b"FFFFFFFF\r\n", b"0x1f\r\n",
             b"HTTP/1.1 ", b"HTTP/2 200", b" 999 ", b"\xff\xfe", b":", b"Connection: close\r\n",
             "HTTP/1.1 \u0663\u0660\u0660 OK\r\n".encode()],
    "ws": [b"\x81\x7e\x00\x05", b"\x81\x7f\x00\x00\x00\x00\x00\x01\x00\x00",
           b"\x81\x7f\xff\xff\xff\xff\xff\xff\xff\xff", b"\x82\x01x", b"\x01\x01a", b"\x00\x01a",
           b"\x89\x7e\x00\x80", b"\x88\x01\x03", b"\x88\x02\x03\xed",
           b"\x88\x04\x03\xe8\xed\xa0", b"\x81\x83abc", b"\xc1\x00", b"\x8b\x00", b"\x81\x02\xed\xa0",
           b"\x81\x03\xed\xa0\x80", b"\x01\x01a" * 70],
    "zfm": [b"\xef\x01", b"\xef\x01\xff\xff\xff\xff\x07\x01\x02", b"\xef\x01\xff\xff\xff\xff\x09\x00\x00",
            b"\xef\x01\xff\xff\xff\xff\x02\xff\xff", b"\xef", b"\x00" * 16],
    "text": [b":", b"[", b"]", b"://", b"-", b"+", b"Z", b".", b"9" * 30, b"\xc2\xb2", b"\xd9\xa3", b"\x00", b" ",
             b"2026", b"02-30", b"+99:99"],
}
TOKENS_FOR = {"cbor": "cbor", "cbor_stream": "cbor", "json_ws": "json", "cloudsolution": "json", "xml_bio": "xml",
              "xml_flat": "xml", "http11": "http", "zfm": "zfm", "url": "text", "values": "text", "websocket": "ws",
              "ws_handshake": "http", "utf8": "cbor"}



def _span(data: bytes, choose: Choose) -> tuple[int, int]:
    a = choose(len(data) + 1)
    return a, a + choose(min(len(data) - a, 64) + 1)


def mutate_once(data: bytes, choose: Choose, tokens: list[bytes], seeds: list[bytes]) -> bytes:
    op = choose(10)
    if not data and op < 7:
        op = 7
    if op == 0:       # flip a bit
        i = choose(len(data))
        return data[:i] + bytes((data[i] ^ (1 << choose(8)),)) + data[i + 1:]
    if op == 1:       # a byte that means something somewhere
        i = choose(len(data))
        return data[:i] + bytes((INTERESTING[choose(len(INTERESTING))],)) + data[i + 1:]
    if op == 2:       # cut a span out
        a, b = _span(data, choose)
        return data[:a] + data[b:]
    if op == 3:       # repeat a span: deeper nesting, longer runs
        a, b = _span(data, choose)
        return data[:b] + data[a:b] * choose(64) + data[b:]
    if op == 4:       # truncate
        return data[:choose(len(data) + 1)]
    if op == 5:       # a number grows (ids, lengths, counts, times)
        digits = [i for i, c in enumerate(data) if 0x30 <= c <= 0x39]
        if digits:
            i = digits[choose(len(digits))]
            return data[:i] + b"9" * (1 + choose(40)) + data[i:]
        return data + b"9" * (1 + choose(40))
    if op == 6:       # a field's text replaced by a token
        a, b = _span(data, choose)
        return data[:a] + tokens[choose(len(tokens))] + data[b:]
    if op == 7:       # a token spliced in
        i = choose(len(data) + 1)
        return data[:i] + tokens[choose(len(tokens))] + data[i:]
    if op == 8:       # two messages spliced
        other = seeds[choose(len(seeds))]
        return data[:choose(len(data) + 1)] + other[choose(len(other) + 1):]
    # several messages in one input (the session targets feed them in turn)
    return data + ft.SEP + seeds[choose(len(seeds))]


# -- structure-aware: messages built from each protocol's own vocabulary ------------------

def _pick(seq: list, choose: Choose) -> object:
    return seq[choose(len(seq))]


JSON_KEYS = ["type", "id", "command", "device_id", "payload", "acks", "message", "error", "status", "ret", "result",
             "count", "logindex", "cloudtime", "access", "cmd", "nosenduser", "reason", "time", "stn", "doornum"]
JSON_WORDS = ["registered", "ack", "ping", "pong", "error", "command", "device_status", "telemetry", "event",
              "register", "subscribe", "unlock", "set_time", "door-1", "other", "reg", "sendlog", "checklive",
              "opendoor", "settime", "gettime", "getnewlog", "reboot", "2026-06-12T10:30:00Z", "2026-02-30 25:00:00",
              "2026-06-12T10:30:00+99:99", "20260612103000", "", " 5 ", "-5", "0x1f", "1_0", "\u0663", "\ud800"]
JSON_NUMBERS = [0, 1, -1, 2, 5, 7, 2 ** 31, 2 ** 63 - 1, 2 ** 63, 2 ** 64, -(2 ** 63) - 1, 10 ** 30, 0.5, -0.0, 1.0,
                1e9, 1e308, -1e308, float("inf"), float("nan")]


def json_value(choose: Choose, depth: int = 0) -> object:
    k = choose(9 if depth < 3 else 6)
    if k == 0:
        return None
    if k == 1:
        return bool(choose(2))
    if k == 2:
        return _pick(JSON_NUMBERS, choose)
    if k == 3:
        return _pick(JSON_WORDS, choose)
    if k == 4:
        return "x" * choose(80)
    if k == 5:
        return _pick(JSON_WORDS, choose) * (1 + choose(3))
    if k == 6:
        return [json_value(choose, depth + 1) for _ in range(choose(4))]
    return {_pick(JSON_KEYS, choose): json_value(choose, depth + 1) for _ in range(choose(4))}


def json_message(seeds: list[bytes], choose: Choose, keys: list[str] = JSON_KEYS, ops: int | None = None) -> bytes:
    """A valid message of the protocol with `ops` (default 1-4) fields
    dropped, retyped or added."""
    msg = json.loads(_pick(seeds, choose))
    for _ in range(1 + choose(4) if ops is None else ops):
        op = choose(5)
        if op == 0 and msg:
            del msg[_pick(list(msg), choose)]
        elif op == 1 and msg:
            msg[_pick(list(msg), choose)] = json_value(choose)
        elif op == 2:
            msg[_pick(keys, choose)] = json_value(choose)
        elif op == 3 and isinstance(msg.get("payload"), dict):
            msg["payload"][_pick(keys, choose)] = json_value(choose)
        else:
            inner = msg.get("cmd")
            msg["cmd"] = dict(inner) if isinstance(inner, dict) else {"cmd": _pick(JSON_WORDS, choose)}
            msg["cmd"][_pick(keys, choose)] = json_value(choose)
    if choose(8) == 0:
        msg = json_value(choose)   # not an object at all
    return json.dumps(msg).encode()


XML_TAGS = ["Operation", "Result", "Reason", "LogId", "TransID", "Session", "Mode", "Time", "DevTime", "ServerTime",
            "Request", "Response", "DeviceSerialNo", "UserId", "PunchTime", "x"]
XML_WORDS = ["", " ", "0", "1", "2", "7", "-1", "99999999999999999999", "success", "OK", "ok", "Fail",
             "FailUnknownToken", "Fail: unknown token", "register first", "forceopen", "normalopen", "restart",
             "TimeLog_v2", "AdminLog_v2", "Register", "KeepAlive", "LockControl", "SetTime", "GetDeviceStatus",
             "Bad Op", " padded ", "2026-02-30T00:00:00", "2026-06-12T09:15:30+99:99", "2026-06-12T09:15:30Z",
             "2026-06-12T09:15:30-05:30", "20260612091530", "\u0663", "a & b < c", "\U0001f600"]


def xml_variant(seeds: list[bytes], choose: Choose, tags: list[str] = XML_TAGS, words: list[str] = XML_WORDS) -> bytes:
    """A valid document of the protocol with one field dropped, changed or added."""
    root, fields = xml_flat.decode(_pick(seeds, choose))
    op = choose(3)
    if op == 0 and fields:
        del fields[_pick(list(fields), choose)]
    else:
        tag = _pick(list(fields), choose) if op == 1 and fields else _pick(tags, choose)
        text = _pick(words, choose)
        fields[tag] = text * (1 + choose(3)) if choose(4) == 0 else text
    return xml_flat.encode(root, list(fields.items())).encode()


def xml_message(choose: Choose, tags: list[str] = XML_TAGS, words: list[str] = XML_WORDS) -> bytes:
    """A flat document of the protocol's roots and tags with hostile texts."""
    root = _pick(["Request", "Response", "Message", "Other"], choose)
    fields = {}
    for _ in range(choose(7)):
        text = _pick(words, choose)
        fields[_pick(tags, choose)] = text * (1 + choose(3)) if choose(4) == 0 else text
    return xml_flat.encode(root, list(fields.items())).encode()


HTTP_HEADERS = [b"Content-Length: 5", b"Content-Length: 0", b"Content-Length: 99999999999", b"Content-Length: +5",
                b"Content-Length: 5, 5", b"Transfer-Encoding: chunked", b"Transfer-Encoding: gzip, chunked",
                b"Transfer-Encoding: chunked, gzip", b"Connection: close", b"Connection: keep-alive",
                b"Content-Type: application/json", b"X: ", b": empty", b" folded", b"Bad Header", b"X:\xff"]
HTTP_STATUS = [b"HTTP/1.1 200 OK", b"HTTP/1.0 200 OK", b"HTTP/1.1 204 No Content", b"HTTP/1.1 304", b"HTTP/1.1 100 Go",
               b"HTTP/1.1 500 Oops", b"HTTP/1.1 20 OK", b"HTTP/2 200", b"HTTP/1.1 2OO OK", b"http/1.1 200 OK", b""]


def http_message(choose: Choose) -> bytes:
    """A response head from good and bad lines, then a body framed one way or another."""
    lines = [_pick(HTTP_STATUS, choose)] + [_pick(HTTP_HEADERS, choose) for _ in range(choose(5))]
    body = (b"hello", b"5\r\nhello\r\n0\r\n\r\n", b"3\r\nab", b"1;ext\r\nx\r\n0\r\nTrailer: 1\r\n\r\n",
            b"z\r\n", b"")[choose(6)]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body * (1 + choose(3))


def zfm_message(choose: Choose) -> bytes:
    """Packets (valid, bad checksum, bad length, unknown id) in a stream with garbage."""
    out = b""
    for _ in range(1 + choose(5)):
        pid = _pick([zfm.CMD, zfm.DATA, zfm.ACK, zfm.END, 0x00, 0x09], choose)
        pkt = bytearray(zfm.encode(pid, bytes(choose(256) for _ in range(choose(40))), _pick([0, 1, 0xFFFFFFFF],
                                                                                             choose)))
        op = choose(6)
        if op == 0:
            pkt[-1] ^= 1 + choose(255)         # checksum
        elif op == 1:
            pkt[7], pkt[8] = choose(256), choose(256)   # length
        elif op == 2:
            pkt = pkt[:choose(len(pkt))]       # cut short
        out += _pick([b"", b"\xef", b"\x00\xef\x01", b"noise"], choose) + bytes(pkt)
    return out


def text_message(name: str, choose: Choose) -> bytes:
    """Addresses and time stamps from their pieces."""
    words = (["ws", "wss", "http", "https", "ftp", "://", "[", "]", ":", "::1", "127.0.0.1", "host", "/", "/ws",
              "80", "65535", "65536", "0", "-1", "99999", "\u0663", "", " "] if name == "url" else
             ["2026", "1969", "10000", "02", "29", "13", "31", "00", "23", "24", "59", "60", "61", "-", "/", "T",
              " ", ":", ".", "Z", "z", "+", "-", "08", "0800", "99", "20260612091530", "\u0663", "+7", " 42 "])
    return "".join(_pick(words, choose) for _ in range(1 + choose(14))).encode("utf-8", "surrogatepass")


UTF8_BYTES = [0x00, 0x41, 0x7F, 0x80, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF, 0xE0, 0xED, 0xEF, 0xF0, 0xF4, 0xF5, 0xFF, 0x9F,
              0xA0, 0x8F, 0x90]


def ws_message(choose: Choose) -> bytes:
    """Frames of every opcode, final or not, of good and bad lengths and text."""
    out = b""
    for _ in range(1 + choose(5)):
        op = _pick([0x0, 0x1, 0x1, 0x2, 0x8, 0x9, 0xA, 0x3, 0xB], choose)
        payload = _pick([b"", b"ok", "\u00e9".encode(), b"\xed\xa0\x80", b"\x03\xe8", b"\x03\xe8why", b"\x0b\xb8",
                         b"\x03\xed", b"x" * 126, b"y" * 200], choose)
        out += server_frame(op, payload, fin=bool(choose(4)))
    return out


def cbor_message(choose: Choose) -> bytes:
    """A journal record of hostile values, encoded."""
    value = [choose(1 << 20), _pick(JSON_NUMBERS[:9], choose), _pick(["punch", "event", "telemetry", "x"], choose),
             _pick([None, "door_opened", ""], choose), json_value(choose)]
    try:
        return cbor.encode(value)
    except cbor.CBORError:
        return cbor.encode(value[:4])   # the last value is not CBOR (a lone surrogate)


def structured(name: str, choose: Choose) -> bytes:
    if name in ("json_ws", "cloudsolution"):
        return json_message(SEEDS[name], choose)
    if name in ("xml_bio", "xml_flat"):
        return xml_message(choose)
    if name == "http11":
        return http_message(choose)
    if name == "zfm":
        return zfm_message(choose)
    if name in ("cbor", "cbor_stream"):
        return cbor_message(choose)
    if name == "websocket":
        return ws_message(choose)
    if name == "ws_handshake":
        return http_message(choose).replace(b"200", b"101", choose(2))
    if name == "utf8":
        return bytes(_pick(UTF8_BYTES, choose) for _ in range(choose(12)))
    return text_message(name, choose)


def hostile(name: str, choose: Choose) -> bytes:
    """One hostile input for target `name`: a structured message or a
    valid one, either with 0-4 byte-level mutations on top."""
    if choose(2):
        data = structured(name, choose)
        rounds = choose(3)
    else:
        data = _pick(SEEDS[name], choose)
        rounds = 1 + choose(4)
    tokens = TOKENS[TOKENS_FOR[name]]
    for _ in range(rounds):
        data = mutate_once(data, choose, tokens, SEEDS[name])[:MAX_INPUT]
    return data


Runs = list[tuple[bytes, int]]   # an input as (bytes, times repeated) parts: big inputs in small lines


def beyond_limits(name: str) -> list[Runs]:
    """Inputs past a limit (frame size, nesting, counts, lengths): refused
    cheaply, before anything they describe is built. In the corpus."""
    frame = ft.MAX_FRAME
    if name in ("json_ws", "cloudsolution"):
        return [[(b"[", 10000)], [(b'{"a":', 3000), (b"1", 1), (b"}", 3000)],
                [(b'{"type": "ping", "x": "', 1), (b"y", frame), (b'"}', 1)], [(b"9", 12000)],
                [(b'{"type": "command", "command": "', 1), (b"x", 9000), (b'", "device_id": "', 1), (b"z", 5000),
                 (b'"}', 1)]]
    if name in ("xml_bio", "xml_flat"):
        return [[(b"<a>", 1), (b"<b>x</b>", 3000), (b"</a>", 1)], [(b"<", frame + 1)],
                [(b"<a><b>", 1), ("\u20ac".encode(), 5500), (b"</b></a>", 1)],
                [(b"<Request><Operation>", 1), (b"O", 9000), (b"</Operation></Request>", 1)],
                [(b"<Response><Op", 1), (b"x", 9000), (b"/></Response>", 1)]]
    if name in ("cbor", "cbor_stream"):
        return [[(b"\x9b", 1), (b"\xff", 8)], [(b"\x5b", 1), (b"\x7f", 8), (b"x", 1)], [(b"\x81", 2000), (b"\x00", 1)],
                [(b"\xbb", 1), (b"\x01", 8), (b"\x00", 64)], [(b"\xc6", 40), (b"\x00", 1)]]
    if name == "http11":
        return [[(b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n", 1)],
                [(b"HTTP/1.1 200 OK\r\n", 1), (b"X: y\r\n", 2000)],
                [(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", 1), (b"1000\r\n", 1), (b"x", 5000)],
                [(b"HTTP/1.1 200 OK\r\n\r\n", 1), (b"z", 8000)]]
    if name == "zfm":
        return [[(b"\xef\x01\xff\xff\xff\xff\x09\x00\x00", 1000)], [(b"\xef\x01", 4000)], [(b"\xef", 8000)]]
    if name == "websocket":   # 1 MB and 2**63-1 announced; 100 fragments; a message one byte over
        return [[(b"\x81\x7f\x00\x00\x00\x00\x00\x10\x00\x00", 1)], [(b"\x81\x7f\x7f", 1), (b"\xff", 7)],
                [(b"\x01\x01a", 1), (b"\x00\x01a", 100), (b"\x80\x00", 1)],
                [(b"\x81\x7e\x40\x01", 1), (b"z", frame + 1)]]
    if name == "ws_handshake":
        return [[(b"HTTP/1.1 101 OK\r\n", 1), (b"X: y\r\n", 1000)], [(b"H", 5000)]]
    if name == "utf8":
        return [[("\U0001f600".encode(), 2000)], [(b"\xed\xa0\x80", 3000)]]
    return [[(b"9", 5000)], [(b"[", 3000), (b"]:1", 1)], [(b"2026-", 1000)]]


def worst_cases(name: str) -> list[Runs]:
    """Inputs within every limit that make a codec build the most: what a
    board's heap must hold. Not in the corpus: tests/host/test_fuzz_codecs.py
    bounds what they allocate, tests/mp/test_fuzz_codecs.py runs them under
    a board's heap."""
    frame = ft.MAX_FRAME
    if name in ("json_ws", "cloudsolution"):
        return [[(b'{"type": "ping", "x": [', 1), (b"0,", frame // 2 - 20), (b"0]}", 1)],
                [(b'{"type": "ping", "x": "', 1), (b"\\u0041", frame // 6 - 10), (b'"}', 1)],
                [(b'{"type": "ping", "x": "', 1), (b"\\ud800", frame // 6 - 10), (b'"}', 1)],
                [(b'{"type": "ping", "x": {', 1), (b'"a": 0, ', 1), (b'"b": 0, ', frame // 8 - 10), (b'"c": 0}}', 1)]]
    if name in ("xml_bio", "xml_flat"):
        return [[(b"<a><b>", 1), (b"&amp;", frame // 5 - 10), (b"</b></a>", 1)],
                [(b"<a><b>", 1), (b"&#x1F600;", frame // 9 - 10), (b"</b></a>", 1)],
                [(b"<a><b>", 1), (b"x<!---->", frame // 8 - 10), (b"</b></a>", 1)],
                [(b"<a>", 1), (b"<!---->", frame // 7 - 10), (b"</a>", 1)],
                [(b"<a><b>", 1), ("\u20ac".encode(), frame // 3 - 10), (b"</b></a>", 1)]]
    record = 4096   # a journal record is at most MAX_RECORD long: the largest the decoder is given
    if name in ("cbor", "cbor_stream"):
        return [[(b"\x9f", 1), (b"\x00", record - 2), (b"\xff", 1)],
                [(b"\x99\x0f\xfd", 1), (b"\xf6", record - 3)],
                [(b"\x7f", 1), (b"\x60", record - 2), (b"\xff", 1)],
                [(b"\x59\x0f\xfd", 1), (b"\x00", record - 3)]]
    if name == "websocket":   # a whole message of max_frame, as one frame and in 63 fragments
        part = frame // 64
        return [[(b"\x81\x7e\x40\x00", 1), ("\u20ac".encode(), frame // 3), (b"x", frame % 3)],
                [(b"\x01\x7e" + part.to_bytes(2, "big"), 1), (b"a", part)]
                + [(b"\x00\x7e" + part.to_bytes(2, "big") + b"a" * part, 62)]
                + [(b"\x80\x7e" + part.to_bytes(2, "big"), 1), (b"a", part)]]
    if name == "http11":
        body = 4096     # the target's max_body
        return [[(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", 1), (b"1\r\nx\r\n", body),
                 (b"0\r\n\r\n", 1)],
                [(b"HTTP/1.1 200 OK\r\nContent-Length: 4096\r\n\r\n", 1), (b"y", body)]]
    return []


def joined(runs: Runs) -> bytes:
    return b"".join(part * times for part, times in runs)


def corpus(seed: int, per_target: int) -> list[tuple[str, Runs]]:
    """(target, input) pairs: per target, its seeds as they are, the
    oversized inputs, arbitrary bytes and mutations; the same for a seed."""
    rng = random.Random(seed)
    out = []
    for name in ft.TARGETS:
        cases = [[(s, 1)] for s in SEEDS[name]] + beyond_limits(name)
        while len(cases) < per_target:
            if rng.randrange(5) == 0:
                cases.append([(rng.randbytes(rng.randrange(64)), 1)])
            else:
                cases.append([(hostile(name, rng.randrange), 1)])
        out.extend((name, runs) for runs in cases)
    return out


def write_cases(path: Path, cases: list[tuple[str, Runs]]) -> int:
    """Cases as JSON lines {"t": target, "p": [[hex, times], ...]}: one
    input per line, so that MicroPython holds one at a time."""
    with path.open("w") as f:
        for name, runs in cases:
            f.write(json.dumps({"t": name, "p": [[part.hex(), times] for part, times in runs]}) + "\n")
    return len(cases)


def write_for_micropython(folder: Path) -> dict:
    """The seeded corpus and the worst cases, written for
    tests/mp/test_fuzz_codecs.py: {"corpus": path, "worst": path, "seed"}."""
    corpus_path, worst_path = folder / "fuzz-corpus.jsonl", folder / "fuzz-worst.jsonl"
    write_cases(corpus_path, corpus(MP_SEED, MP_PER_TARGET))
    write_cases(worst_path, [(name, runs) for name in ft.TARGETS for runs in worst_cases(name)])
    return {"corpus": str(corpus_path), "worst": str(worst_path), "seed": MP_SEED}
