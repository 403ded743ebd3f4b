"""The hostile-input suite for every agent codec, on CPython: hypothesis
drives the targets of tests/fuzz_targets.py (arbitrary bytes, and
structure-aware mutations of each protocol's valid messages from
tests/fuzz_corpus.py). Each input raises only the codec's documented error
(CBORError, XmlError, HttpError, RemoteProtocolError, ValueError; a
session never raises: garbage is a BadInput event), answers only what its
contract allows, and returns within SLOW_MS. Inputs past a limit are
refused before what they describe is built (tracemalloc); what a codec
writes it reads back (round trips). tests/mp/test_fuzz_codecs.py feeds a
seeded corpus of the same inputs to the same targets inside MicroPython.

The defects the fuzzers found have each a test below that failed before
its fix."""

import asyncio
import functools
import json
import string
import tracemalloc
from datetime import datetime

import fuzz_corpus as fc
import fuzz_targets as ft
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.codecs import (
    cbor,
    cloudsolution,
    cs_commands,
    http11,
    json_ws,
    url,
    values,
    websocket,
    xml_bio,
    xml_commands,
    xml_flat,
    zfm,
)
from agent.codecs.session import BadInput, Command, Registered
from agent.errors import LinkClosed
from agent.transports.http import HttpClient
from host_tools.bench import json_ws as bench_json_ws

HOSTILE = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ROUND_TRIP = settings(max_examples=150, deadline=None)


def _chooser(data):
    return lambda n: data.draw(st.integers(0, n - 1)) if n > 1 else 0


# -- hostile input: only the documented error, a sane answer, in time ------------------------

@pytest.mark.parametrize("name", list(ft.TARGETS))
@HOSTILE
@given(data=st.data())
def test_hostile_input_gets_only_the_documented_answer(name, data):
    if data.draw(st.integers(0, 4)) == 0:
        raw = data.draw(st.binary(max_size=300))
    else:
        raw = fc.hostile(name, _chooser(data))
    ft.run(name, raw)


@functools.cache
def _mp_corpus():
    return fc.corpus(fc.MP_SEED, fc.MP_PER_TARGET)


@pytest.mark.parametrize("name", list(ft.TARGETS))
def test_the_seeded_corpus_gets_only_the_documented_answer(name):
    # The very inputs the MicroPython run is fed (tests/mp/test_fuzz_codecs.py).
    for target, runs in _mp_corpus():
        if target == name:
            ft.run(name, fc.joined(runs))


# session, its protocol's seed messages, the server's "registered" answer and
# the event it makes (None: any Registered)
SESSIONS = {
    "json": (lambda: json_ws.Session("door-1", "tok", max_frame=ft.MAX_FRAME), fc.JSON_SEEDS,
             '{"type": "registered"}', Registered(False)),
    "xml": (lambda: xml_bio.Session("FK1", "cloud", max_frame=ft.MAX_FRAME), fc.XML_SEEDS,
            "<Response><Result>success</Result><Session>s</Session></Response>", None),
}


@pytest.mark.parametrize("kind", list(SESSIONS))
@HOSTILE
@given(data=st.data(), registered=st.booleans())
def test_a_session_takes_any_text(kind, data, registered):
    make, seeds, answer, event = SESSIONS[kind]
    texts = data.draw(st.lists(st.text(max_size=80) | st.sampled_from([m.decode() for m in seeds]), max_size=6))
    s = make()
    s.hello()
    if registered:
        got = s.receive(answer)
        assert got == event if event is not None else isinstance(got, Registered), got
    for text in texts:
        ft.check_event(s.receive(text), text.encode("utf-8", "surrogatepass"))


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=10), kids, max_size=4),
                    max_leaves=12)


@HOSTILE
@given(st.dictionaries(st.sampled_from(fc.JSON_KEYS), JSON, max_size=8) | JSON,
       st.sampled_from(["reg", "sendlog", "checklive", "opendoor", "settime"]))
def test_cloudsolution_reply_takes_any_json(obj, cmd):
    # What json.loads may hand the codec, NaN and 10**40 included.
    try:
        reply = cloudsolution.parse_reply(obj, cmd, gmt=8)
    except cloudsolution.RemoteProtocolError:
        pass
    else:
        assert reply.ok in (True, False)
        assert cloudsolution.acked_upto(reply, 5, 3) in (None, 5, 6, 7)
    if isinstance(obj, dict):
        ft.check_event(cloudsolution.server_command(obj, 8), b"")


# -- limits come first: nothing built from what an input only announces ----------------------

def _peak(name, data):
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        ft.run(name, data)
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


BEYOND = [(name, runs) for name in ft.TARGETS for runs in fc.beyond_limits(name)]


@pytest.mark.parametrize("name, runs", BEYOND, ids=[f"{n}-{i}" for i, (n, _) in enumerate(BEYOND)])
def test_inputs_past_a_limit_are_refused_before_they_are_built(name, runs):
    # Twice the input (the target's own copies: text, pieces) and some
    # slack, never anything in proportion to a size the input announces
    # (a CBOR length of 2**64, a Content-Length of 10**11) or to a depth.
    data = fc.joined(runs)
    assert _peak(name, data) <= 4 * len(data) + 64 * 1024


@pytest.mark.parametrize("name", [n for n in ft.TARGETS if fc.worst_cases(n)])
def test_worst_case_messages_within_the_limits_are_handled(name):
    # What the MicroPython test runs under a capped heap; here in time
    # and without an error.
    for runs in fc.worst_cases(name):
        ft.run(name, fc.joined(runs))


def test_a_session_that_runs_out_of_memory_refuses_the_message(monkeypatch):
    # MicroPython: a 16 KB array within max_frame can need more heap than
    # is free. The message is refused (like one over the limit), the link
    # and the session live on.
    s = json_ws.Session("door-1", "tok")
    s.hello()
    assert s.receive('{"type": "registered"}') == Registered(False)

    def no_memory(text):
        raise MemoryError("memory allocation failed, allocating 65536 bytes")
    monkeypatch.setattr(json_ws.json, "loads", no_memory)
    ev = s.receive('{"type": "ping", "x": [0, 0, 0]}')
    assert isinstance(ev, BadInput) and ev.counter == "oversized_frame" and "free memory" in ev.message
    monkeypatch.undo()
    assert s.receive('{"type": "ack", "id": 3}').record_id == 3


# -- defects the fuzzers found, fixed in agent/codecs: each failed before its fix -------------

def test_xml_request_without_an_operation_is_bad_input_not_a_crash():
    # Was TypeError ('NoneType' object is not subscriptable) out of
    # receive(): the uplink dropped the link with a traceback.
    s = xml_bio.Session("FK1", "cloud")
    s.hello()
    s.receive("<Response><Result>success</Result><Session>s</Session></Response>")
    for doc in ("<Request><TransID>1</TransID></Request>", "<Request/>", "<Message><Request/></Message>"):
        ev = s.receive(doc)
        assert isinstance(ev, BadInput) and ev.counter == "unknown_operation", (doc, ev)


@pytest.mark.parametrize("session, text", [
    (json_ws.Session("d", "t"), '{"type": "%s"}' % ("x" * 9000)),
    (json_ws.Session("d", "t"), '{"type": ["%s"]}' % ("x" * 9000)),
    (json_ws.Session("d", "t"), '{"type": "command", "command": "unlock", "device_id": "%s"}' % ("x" * 9000)),
    (xml_bio.Session("s", "c"), "<Response><Operation>%s</Operation></Response>" % ("O" * 9000)),
    (xml_bio.Session("s", "c"), "<Request><Operation>%s</Operation></Request>" % ("O" * 9000)),
    (xml_bio.Session("s", "c"), "<Request><A%s>1</A%s></Request>" % ("a" * 7000, "b" * 7000)),
    (xml_bio.Session("s", "c"), "<Message><Response>%s</Response></Message>" % ("x" * 9000)),
], ids=["json-type", "json-type-list", "json-device", "xml-response-op", "xml-request-op", "xml-tags",
        "xml-vendor-op"])
def test_a_bad_input_message_quotes_the_peer_briefly(session, text):
    # Every bad input is logged; a peer's 9 KB value was quoted whole.
    for registered in (False, True):
        session.close()
        session.hello()
        if registered:
            session.receive('{"type": "registered"}' if isinstance(session, json_ws.Session) else
                            "<Response><Result>success</Result><Session>s</Session></Response>")
        ev = session.receive(text)
        assert isinstance(ev, BadInput) and len(ev.message) < 300, (ev.counter, len(ev.message))


# -- defects the fuzzers found, fixed: each test failed before its fix -------------------------

def test_a_chunked_body_of_tiny_chunks_stays_within_its_limit():
    # http11.py kept each chunk as its own bytes object (~40 bytes of heap
    # per 1-byte chunk, 40x max_body).
    body = 4096
    data = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"1\r\nx\r\n" * body + b"0\r\n\r\n")
    tracemalloc.start()
    try:
        parser = http11.ResponseParser(max_header=2048, max_body=body)
        base = tracemalloc.get_traced_memory()[0]
        resp = None
        for i in range(0, len(data), 64):
            resp = parser.feed(data[i:i + 64]) or resp
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert resp is not None and resp.body == b"x" * body
    assert peak <= 8 * body + 32 * 1024, f"{peak} bytes of heap for a body of {body}"


# http_head.parse_head (and http11's Content-Length) took str.isdigit()
# digits such as '\u00b2', then int() raised a bare ValueError.
@pytest.mark.parametrize("head", ["HTTP/1.1 \u00b2\u00b2\u00b2 OK\r\nContent-Length: 0",
                                  "HTTP/1.1 200 OK\r\nContent-Length: \u00b2"], ids=["status", "content-length"])
def test_a_head_with_non_ascii_digits_is_an_http_error(head):
    with pytest.raises(http11.HttpError):
        http11.ResponseParser().feed((head + "\r\n\r\n").encode())


async def test_a_reply_too_deep_to_parse_closes_the_link_with_a_reason():
    # transports/http.py caught only ValueError from json.loads: a 40 KB
    # body of nested arrays (within max_body) raised RecursionError out of
    # the client, and the uplink logged a traceback.
    body = b"[" * 20000 + b"]" * 20000

    async def serve(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = HttpClient(f"http://127.0.0.1:{port}", 5)
    try:
        with pytest.raises(LinkClosed):
            await client.post_json("/api/device-http", {"cmd": "reg"})
    finally:
        await client.close()
        server.close()
        await server.wait_closed()


# -- round trips: what a codec writes, it (or its peer's codec) reads back -------------------

CBOR_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-2 ** 64, 2 ** 64 - 1) | st.floats() | st.text() | st.binary(),
    lambda kids: st.lists(kids, max_size=5) | st.dictionaries(st.text(max_size=8) | st.integers(-2 ** 64, 2 ** 64 - 1),
                                                          kids, max_size=5),
    max_leaves=20)


@ROUND_TRIP
@given(CBOR_VALUES)
def test_cbor_round_trip(x):
    assert ft.same(cbor.decode(cbor.encode(x)), x)


NAMES = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,12}", fullmatch=True)
XML_TEXT = st.text(st.characters(codec="utf-8").filter(lambda c: xml_flat._xml_char(ord(c))), max_size=40)


@ROUND_TRIP
@given(NAMES, st.dictionaries(NAMES, XML_TEXT | st.sampled_from(fc.XML_WORDS), max_size=10))
def test_xml_flat_round_trip(root, fields):
    assert xml_flat.decode(xml_flat.encode(root, list(fields.items())), 1 << 20) == (root, fields)


@ROUND_TRIP
@given(st.lists(st.tuples(st.sampled_from([zfm.CMD, zfm.DATA, zfm.ACK, zfm.END]), st.binary(max_size=256),
                          st.integers(0, 0xFFFFFFFF), st.binary(max_size=20).map(lambda b: b.replace(b"\xef", b""))),
                max_size=5), st.integers(1, 300))
def test_zfm_round_trip_through_garbage(packets, step):
    stream = b"".join(garbage + zfm.encode(pid, payload, address) for pid, payload, address, garbage in packets)
    parser, got = zfm.Parser(), []
    for i in range(0, len(stream), step):
        parser.feed(stream[i:i + step])
        got.extend(parser.packets())
    assert got == [(address, pid, payload) for pid, payload, address, _ in packets]
    assert parser.bad_checksum == 0


HEADER_VALUE = st.text(string.ascii_letters + string.digits + " -/;=", max_size=20).map(str.strip)


@ROUND_TRIP
@given(st.sampled_from(["HTTP/1.1", "HTTP/1.0"]), st.integers(200, 599).filter(lambda s: s not in (204, 304)),
       st.dictionaries(st.sampled_from(["x-a", "content-type", "server", "x-b"]), HEADER_VALUE, max_size=3),
       st.binary(max_size=600), st.sampled_from(["length", "chunked", "close"]), st.data())
def test_http_response_round_trip(version, status, headers, body, framing, data):
    head = [f"{version} {status} Reason Phrase"] + [f"{k}: {v}" for k, v in headers.items()]
    if framing == "length":
        head.append(f"Content-Length: {len(body)}")
        payload = body
    elif framing == "chunked":
        head.append("Transfer-Encoding: chunked")
        cuts = sorted(data.draw(st.lists(st.integers(0, len(body)), max_size=6)))
        chunks = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True) if b > a]
        payload = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"
    else:
        payload = body
    raw = ("\r\n".join(head) + "\r\n\r\n").encode() + payload
    parser, resp = http11.ResponseParser(max_body=1 << 16), None
    step = data.draw(st.integers(1, 64))
    for i in range(0, len(raw), step):
        resp = parser.feed(raw[i:i + step]) or resp
    if framing == "close":
        assert resp is None
        resp = parser.eof()
    assert (resp.version, resp.status, resp.reason, resp.body) == (version, status, "Reason Phrase", body)
    assert all(resp.headers[k] == v for k, v in headers.items())


@ROUND_TRIP
@given(st.lists(st.text(st.characters(codec="utf-8"), max_size=300), min_size=1, max_size=4), st.data())
def test_websocket_messages_round_trip_through_fragments_and_pings(texts, data):
    stream = b""
    for text in texts:
        raw = text.encode()
        cuts = sorted(data.draw(st.lists(st.integers(0, len(raw)), max_size=4)))
        parts = [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True)]
        for i, part in enumerate(parts):
            stream += fc.server_frame(0x1 if i == 0 else 0x0, part, fin=i == len(parts) - 1)
            if data.draw(st.booleans()):
                stream += fc.server_frame(0x9, b"hb")
    parser, got = websocket.FrameParser(1 << 16, chunk=64), []
    step = data.draw(st.integers(1, 100))
    for i in range(0, len(stream), step):
        events = parser.feed(stream[i:i + step])
        while parser.pending():      # at most MAX_EVENTS per feed(): the rest on asking
            events += parser.feed(b"")
        got.extend(v for k, v in events if k == websocket.MESSAGE)
    assert got == texts


HOSTS = st.from_regex(r"[a-z0-9]([a-z0-9.-]{0,20}[a-z0-9])?", fullmatch=True)


@ROUND_TRIP
@given(HOSTS | st.sampled_from(["[::1]", "[fe80::1%eth0]"]), st.integers(0, 65535),
       st.sampled_from(["ws", "wss", "http", "https"]), st.from_regex(r"(/[a-z0-9_.-]{1,8}){0,3}", fullmatch=True))
def test_url_round_trip(host, port, scheme, path):
    bare = host.strip("[]")
    assert url.split_hostport(f"{host}:{port}") == (bare, port)
    assert url.split_url(f"{scheme}://{host}:{port}{path}/") == (scheme, bare, port, path)


@ROUND_TRIP
@given(st.datetimes(datetime(1970, 1, 1), datetime(9999, 12, 30)), st.integers(-12, 14),
       st.sampled_from(["T", " ", "-T", "/"]))
def test_time_stamps_round_trip(when, gmt, sep):
    fields = (when.year, when.month, when.day, when.hour, when.minute, when.second)
    text = values.wall_text(fields)
    assert values.parse_wall(text) == fields
    assert values.parse_wall(text.replace("T", sep)) == fields
    assert values.parse_wall(text.replace("-", "").replace(":", "").replace("T", "")) == fields
    if when.year >= 1971:
        epoch = values.wall_epoch(text, gmt)
        assert values.epoch_wall(epoch, gmt) == text
        assert values.wall_epoch(text + "%+03d:00" % gmt, 0, trust_zone=True) == epoch


@ROUND_TRIP
@given(st.integers(-10 ** 18 + 1, 10 ** 18 - 1), st.sampled_from(["", " ", "\t"]))
def test_integers_round_trip(n, pad):
    assert values.as_int(pad + str(n) + pad) == n


@ROUND_TRIP
@given(st.text(min_size=1, max_size=32), st.dictionaries(st.text(max_size=8), JSON, max_size=4),
       st.text(min_size=1, max_size=12) | st.integers(0, 2 ** 62))
def test_bench_json_commands_reach_the_device_as_sent(name, payload, cmd_id):
    s = json_ws.Session("door-1", "tok")
    s.hello()
    s.receive('{"type": "registered", "acks": true}')
    ev = s.receive(bench_json_ws.encode_command("door-1", name, payload, cmd_id))
    assert isinstance(ev, Command) and (ev.id, ev.name) == (cmd_id, name)
    assert ft.same(ev.payload, json.loads(json.dumps(payload)))


@ROUND_TRIP
@given(st.sampled_from(["unlock", "lock", "lock_control", "status", "set_time"]), st.integers(3, 6),
       st.datetimes(datetime(1970, 1, 1)), st.text(string.ascii_letters + string.digits, min_size=1, max_size=12))
def test_xml_server_requests_reach_the_device_as_sent(command, mode, when, trans_id):
    payload = {"mode": mode, "time": when.strftime("%Y-%m-%dT%H:%M:%S")}
    s = xml_bio.Session("FK1", "cloud")
    s.hello()
    s.receive("<Response><Result>success</Result><Session>s</Session></Response>")
    ev = s.receive(xml_bio.server_request(command, payload, trans_id))
    if command == "lock_control":   # a raw vendor mode reads back as the command it is
        command, expect = xml_commands.LOCK_COMMANDS[mode]
        assert ev.payload == expect
    assert isinstance(ev, Command) and ev.id == trans_id and ev.name == command, ev
    if command == "set_time":
        assert ev.payload == {"time": payload["time"]}


@ROUND_TRIP
@given(st.sampled_from([n for n in cs_commands.SERVER_COMMANDS.values() if n != "door_settings"]),
       st.datetimes(datetime(2020, 1, 2), datetime(2099, 12, 30)), st.booleans())
def test_cloudsolution_server_commands_reach_the_device_as_sent(name, when, with_zone):
    text = when.strftime("%Y-%m-%dT%H:%M:%S") + ("+08:00" if with_zone else "")
    obj = cloudsolution.command_request(name, {"time": text})
    ev = cloudsolution.server_command(obj, gmt=8)
    assert ev.name == name and ev.id == obj["cmd"]
    if name == "set_time":
        assert ev.payload == {"epoch": values.wall_epoch(text, 8, trust_zone=True)}
