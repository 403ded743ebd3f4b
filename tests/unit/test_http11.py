from agent.codecs import http11

from support import raises

OK = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n"
      b"\r\n{\"a\": true}")


def _head_and_body(raw):
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    return lines[0], lines[1:], body


def test_request_bytes():
    raw = http11.request("POST", "bench.local", 8780, "/api/device-http", b'{"cmd": "reg"}')
    first, headers, body = _head_and_body(raw)
    assert first == "POST /api/device-http HTTP/1.1"
    assert "Host: bench.local:8780" in headers
    assert "Content-Type: application/json" in headers
    assert "Content-Length: 14" in headers
    assert "Connection: keep-alive" in headers
    assert "User-Agent: doorlink" in headers
    assert body == b'{"cmd": "reg"}'


def test_request_host_port_only_when_not_default():
    _, headers, _ = _head_and_body(http11.request("POST", "h", 80, "/", b""))
    assert "Host: h" in headers and "Content-Length: 0" in headers
    _, headers, _ = _head_and_body(http11.request("POST", "h", 443, "/", b"", default_port=443))
    assert "Host: h" in headers
    _, headers, _ = _head_and_body(http11.request("POST", "h", 443, "/", b""))
    assert "Host: h:443" in headers
    _, headers, _ = _head_and_body(http11.request("GET", "::1", 8080, "/", None, (("X-A", "1"),)))
    assert "Host: [::1]:8080" in headers and "X-A: 1" in headers
    assert not [h for h in headers if h.startswith("Content-")]


def test_request_refuses_header_injection():
    raises(http11.HttpError, http11.request, "POST", "h", 80, "/x\r\nEvil: 1", b"")
    raises(http11.HttpError, http11.request, "POST", "h", 80, "/", b"", (("X", "a\nb"),))


def test_parse_whole_response():
    p = http11.ResponseParser()
    r = p.feed(OK)
    assert r.status == 200 and r.reason == "OK" and r.version == "HTTP/1.1"
    assert r.headers["content-type"] == "application/json"
    assert r.body == b'{"a": true}'
    assert r.keep_alive and p.rest == b""


def test_parse_byte_by_byte():
    p = http11.ResponseParser()
    results = [p.feed(OK[i:i + 1]) for i in range(len(OK))]
    assert results[:-1] == [None] * (len(OK) - 1)
    assert results[-1].body == b'{"a": true}'


def test_chunked_split_anywhere():
    raw = (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
           b"4;ext=1\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nX-Trailer: 1\r\n\r\n")
    for cut in range(1, len(raw)):
        p = http11.ResponseParser()
        assert p.feed(raw[:cut]) is None
        r = p.feed(raw[cut:])
        assert r is not None and r.body == b"Wikipedia in\r\n\r\nchunks.", cut


def test_body_until_close_needs_eof():
    p = http11.ResponseParser()
    assert p.feed(b"HTTP/1.0 200 OK\r\n\r\nhello ") is None
    assert p.feed(b"world") is None
    r = p.eof()
    assert r.body == b"hello world" and not r.keep_alive


def test_keep_alive_rules():
    r = http11.ResponseParser().feed(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
    assert r.body == b"" and not r.keep_alive
    r = http11.ResponseParser().feed(b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n")
    assert r.keep_alive


def test_interim_100_and_204():
    p = http11.ResponseParser()
    r = p.feed(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n")
    assert r.status == 204 and r.body == b""


def test_status_line_without_reason_and_duplicate_headers():
    r = http11.ResponseParser().feed(b"HTTP/1.1 500\r\nX-A: 1\r\nx-a: 2\r\nContent-Length: 0\r\n\r\n")
    assert r.status == 500 and r.reason == "" and r.headers["x-a"] == "1, 2"


def test_leftover_bytes_are_kept_in_rest():
    p = http11.ResponseParser()
    r = p.feed(OK + b"HTTP/1.1 200")
    assert r.status == 200 and p.rest == b"HTTP/1.1 200"
    assert p.feed(b" OK") is None and p.rest == b"HTTP/1.1 200 OK"


def test_malformed_status_lines():
    for bad in (b"HTTP/2 200 OK\r\n\r\n", b"ICY 200 OK\r\n\r\n", b"HTTP/1.1 20 OK\r\n\r\n",
                b"HTTP/1.1 abc OK\r\n\r\n", b"<html>hello</html>\r\n\r\n", b"\r\n\r\n"):
        e = raises(http11.HttpError, http11.ResponseParser().feed, bad)
        assert "status line" in str(e), bad


def test_malformed_headers():
    e = raises(http11.HttpError, http11.ResponseParser().feed, b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n")
    assert "header line" in str(e)
    e = raises(http11.HttpError, http11.ResponseParser().feed,
               b"HTTP/1.1 200 OK\r\nA: 1\r\n folded\r\n\r\n")
    assert "header line" in str(e)
    e = raises(http11.HttpError, http11.ResponseParser().feed,
               b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n")
    assert "content-length" in str(e)
    e = raises(http11.HttpError, http11.ResponseParser().feed,
               b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n")
    assert "transfer-encoding" in str(e)
    raises(http11.HttpError, http11.ResponseParser().feed, b"HTTP/1.1 200 \xff\xfe\r\n\r\n")


def test_header_limit_checked_without_terminator():
    p = http11.ResponseParser(max_header=100)
    assert p.feed(b"HTTP/1.1 200 OK\r\n") is None
    e = raises(http11.HttpError, p.feed, b"X-Pad: " + b"x" * 100)
    assert "header over 100 bytes" in str(e)


def test_body_limit_checked_from_content_length_before_any_body():
    p = http11.ResponseParser(max_body=10)
    e = raises(http11.HttpError, p.feed, b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n")
    assert "body over 10 bytes" in str(e)
    r = http11.ResponseParser(max_body=10).feed(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789")
    assert r.body == b"0123456789"


def test_body_limit_chunked_and_until_close():
    p = http11.ResponseParser(max_body=10)
    assert p.feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n12345678\r\n") is None
    e = raises(http11.HttpError, p.feed, b"3\r\n")
    assert "body over 10 bytes" in str(e)
    p = http11.ResponseParser(max_body=10)
    assert p.feed(b"HTTP/1.1 200 OK\r\n\r\n12345") is None
    raises(http11.HttpError, p.feed, b"678901")


def test_bad_chunks():
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    for bad in (b"zz\r\n", b"0x10\r\n", b"+5\r\n", b"-1\r\n", b"\r\n", b"123456789\r\n", b"\xff\r\n"):
        e = raises(http11.HttpError, http11.ResponseParser().feed, head + bad)
        assert "chunk size" in str(e), bad
    e = raises(http11.HttpError, http11.ResponseParser().feed, head + b"2\r\nabc\r\n")
    assert "longer than its size" in str(e)
    e = raises(http11.HttpError, http11.ResponseParser().feed, head + b"1" * 2000)
    assert "framing line" in str(e)


def test_eof_in_the_middle_is_an_error():
    p = http11.ResponseParser()
    e = raises(http11.HttpError, p.eof)
    assert "before any response" in str(e)
    p = http11.ResponseParser()
    p.feed(OK[:-3])
    e = raises(http11.HttpError, p.eof)
    assert "middle" in str(e)
