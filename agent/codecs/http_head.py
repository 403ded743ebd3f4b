# The head of an HTTP/1.1 exchange, sans-IO: the bytes of a request, and a
# response's status line and headers. Shared by the HTTP client's
# ResponseParser (http11.py) and the WebSocket handshake (websocket.py),
# which needs only this: a door agent on a WebSocket uplink does not load
# the body parser (RAM).


class HttpError(ValueError):
    """The server's bytes are not an HTTP/1.1 response we accept."""


def digits(text):
    """Whether text is ASCII digits only (str.isdigit() takes '²' and
    other digits that int() then refuses)."""
    if not text:
        return False
    for c in text:
        if c not in "0123456789":
            return False
    return True


def _clean(text, what):
    text = str(text)
    if "\r" in text or "\n" in text:
        raise HttpError("%s must not contain a line break: %r" % (what, text[:60]))
    return text


def request(method, host, port, path, body_bytes, headers=(), default_port=80, connection="keep-alive"):
    """The bytes of one request. body_bytes None = no body (no Content-*);
    headers: extra (name, value) pairs. The port is named in Host only
    when it is not the scheme's default_port (80, or 443 for https).
    `connection`: the Connection header (a WebSocket handshake: Upgrade)."""
    host = _clean(host, "host")
    if ":" in host and not host.startswith("["):
        host = "[" + host + "]"  # an IPv6 literal
    lines = ["%s %s HTTP/1.1" % (_clean(method, "method"), _clean(path or "/", "path")),
             "Host: " + (host if port == default_port else "%s:%d" % (host, port)),
             "User-Agent: doorlink",
             "Connection: " + _clean(connection, "connection")]
    if body_bytes is not None:
        lines.append("Content-Type: application/json")
        lines.append("Content-Length: %d" % len(body_bytes))
    for name, value in headers:
        lines.append("%s: %s" % (_clean(name, "header name"), _clean(value, "header value")))
    head = ("\r\n".join(lines) + "\r\n\r\n").encode()
    return head + body_bytes if body_bytes else head


def parse_head(block):
    """A response head (status line and headers, no blank line) ->
    (version, status, reason, {lower-case name: value}); HttpError."""
    try:
        lines = block.decode().split("\r\n")
    except ValueError:
        raise HttpError("response header is not text")
    parts = lines[0].split(" ", 2)
    version = parts[0]
    if (len(parts) < 2 or version not in ("HTTP/1.1", "HTTP/1.0") or len(parts[1]) != 3
            or not digits(parts[1])):
        raise HttpError("malformed status line: %r" % lines[0][:80])
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        name = name.strip().lower()
        if not sep or not name or name != line[:len(name)].lower():
            raise HttpError("malformed header line: %r" % line[:80])
        value = value.strip()
        headers[name] = headers[name] + ", " + value if name in headers else value
    return version, int(parts[1]), parts[2] if len(parts) > 2 else "", headers
