# HTTP/1.1 client side, sans-IO (in the spirit of h11): request() makes the
# bytes to send, ResponseParser turns received bytes into a Response. No
# sockets, no clocks, so both runtimes test it with plain bytes. MicroPython
# has no http.client; this is the small subset a device needs to POST JSON.
#
# Limits are checked before data is kept: a server announcing a body larger
# than max_body is refused at the header, not after buffering it.
from agent.codecs.http_head import HttpError, digits, parse_head, request  # noqa: F401 - http11's API


class Response:
    __slots__ = ("version", "status", "reason", "headers", "body", "keep_alive")

    def __init__(self, version, status, reason, headers, body=b""):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body
        # May the connection carry another request after this response?
        conn = headers.get("connection", "").lower()
        self.keep_alive = "keep-alive" in conn if version == "HTTP/1.0" else "close" not in conn

    def __repr__(self):
        return "<Response %d %s, %d bytes>" % (self.status, self.reason, len(self.body))


# parser states
_HEAD, _LENGTH, _CHUNK_SIZE, _CHUNK_DATA, _CHUNK_END, _TRAILER, _UNTIL_CLOSE, _DONE = range(8)
_MAX_LINE = 1024  # a chunk-size or trailer line
_HEX = "0123456789abcdefABCDEF"


def _chunk_size(line):
    # Strictly hex digits (int(x, 16) alone would take "0x1f", "+1", "1_0").
    try:
        text = line.split(b";")[0].strip().decode()
    except ValueError:
        text = ""
    if not text or len(text) > 8 or [c for c in text if c not in _HEX]:
        raise HttpError("bad chunk size %r" % line[:40])
    return int(text, 16)


class ResponseParser:
    """feed(bytes) -> a Response once one is complete, else None. Bytes
    after a complete response are kept in `rest` (a sign the connection
    is out of step: do not reuse it)."""

    def __init__(self, max_header=8192, max_body=65536):
        self.max_header = max_header
        self.max_body = max_body
        self.rest = b""
        self._buf = b""
        self._state = _HEAD
        self._resp = None
        # One buffer for the body: a list of pieces costs an object per
        # chunk, and a server sending 1-byte chunks would make that 40x.
        self._body = bytearray()
        self._size = 0    # body bytes accepted so far
        self._left = 0    # bytes left in the body (Content-Length) or chunk

    def feed(self, data):
        if self._state == _DONE:
            self.rest += data
            return None
        self._buf += data
        while True:
            st = self._state
            if st == _HEAD:
                if not self._head():
                    return None
            elif st == _LENGTH or st == _CHUNK_DATA:
                if not self._buf:
                    return None
                take = self._buf[:self._left]
                self._buf = self._buf[len(take):]
                self._body.extend(take)
                self._left -= len(take)
                if self._left:
                    return None
                self._state = _CHUNK_END if st == _CHUNK_DATA else _DONE
            elif st == _UNTIL_CLOSE:
                self._grow(len(self._buf))
                self._body.extend(self._buf)
                self._buf = b""
                return None
            elif st == _DONE:
                return self._finish()
            else:  # chunk framing lines
                line = self._line()
                if line is None:
                    return None
                self._chunk_line(st, line)

    def eof(self):
        """The server closed the connection: the Response if that ends it,
        else HttpError (a response cut short)."""
        if self._state == _UNTIL_CLOSE:
            self._state = _DONE
            return self._finish()
        if self._state == _HEAD and not self._buf:
            raise HttpError("connection closed before any response")
        raise HttpError("connection closed in the middle of a response")

    # -- internals ------------------------------------------------------------
    def _head(self):
        end = self._buf.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buf) > self.max_header:
                raise HttpError("response header over %d bytes" % self.max_header)
            return False
        if end > self.max_header:
            raise HttpError("response header over %d bytes" % self.max_header)
        version, status, reason, headers = parse_head(self._buf[:end])
        self._buf = self._buf[end + 4:]
        if 100 <= status < 200:
            return True  # interim (100 Continue): the real response follows
        self._resp = Response(version, status, reason, headers)
        te = headers.get("transfer-encoding", "").lower()
        if status in (204, 304):
            self._state = _DONE
        elif te:
            if te.split(",")[-1].strip() != "chunked":
                raise HttpError("unsupported transfer-encoding %r" % te)
            self._state = _CHUNK_SIZE
        elif "content-length" in headers:
            cl = headers["content-length"]
            if not digits(cl) or len(cl) > 12:
                raise HttpError("bad content-length %r" % cl[:40])
            self._left = int(cl)
            self._grow(self._left)
            self._state = _LENGTH if self._left else _DONE
        else:
            self._state = _UNTIL_CLOSE
            self._resp.keep_alive = False  # the close is what ends the body
        return True

    def _grow(self, n):
        self._size += n
        if self._size > self.max_body:
            raise HttpError("response body over %d bytes" % self.max_body)

    def _line(self):
        end = self._buf.find(b"\r\n")
        if end < 0:
            if len(self._buf) > _MAX_LINE:
                raise HttpError("chunk framing line over %d bytes" % _MAX_LINE)
            return None
        line = self._buf[:end]
        self._buf = self._buf[end + 2:]
        return line

    def _chunk_line(self, st, line):
        if st == _CHUNK_END:
            if line:
                raise HttpError("chunk data longer than its size")
            self._state = _CHUNK_SIZE
        elif st == _TRAILER:
            if not line:
                self._state = _DONE  # trailers are read and dropped
        else:
            size = _chunk_size(line)
            if size == 0:
                self._state = _TRAILER
            else:
                self._grow(size)
                self._left = size
                self._state = _CHUNK_DATA

    def _finish(self):
        resp = self._resp
        resp.body = bytes(self._body)
        self._body = bytearray()
        self.rest = self._buf
        self._buf = b""
        self._state = _DONE
        return resp
