# Addresses as users and site files write them: "host:port", "[v6]:port",
# and the URLs of the uplinks. The one parser for the agent's --emulator,
# its HTTP client, and the host tools (fault proxy, CLI).


def split_hostport(text, default_port=None):
    """'host:port', '[v6]:port' or (with default_port) 'host' -> (host, port).
    ValueError naming what is wrong otherwise."""
    text = text.strip()
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError("bad address %r" % text)
        port = rest[1:] if rest else None
    else:
        host, sep, port = text.rpartition(":")
        if not sep:
            host, port = text, None
    if port is None or port == "":
        if default_port is None:
            raise ValueError("%r needs a port: HOST:PORT" % text)
        port = default_port
    elif not port.isdigit() or len(port) > 5:
        raise ValueError("bad port in %r" % text)
    port = int(port)
    if not host or not 0 <= port <= 65535:
        raise ValueError("bad address %r" % text)
    return host, port


def split_url(url, schemes=("http", "https", "ws", "wss")):
    """'https://host:port/base/' -> (scheme, host, port, base path without a
    trailing /). The port defaults to the scheme's (80, 443)."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in schemes:
        raise ValueError("url must start with %s: %r" % (" or ".join(s + "://" for s in schemes), url))
    hostport, slash, base = rest.partition("/")
    base = ("/" + base).rstrip("/") if slash else ""
    default = 443 if scheme in ("https", "wss") else 80
    host, port = split_hostport(hostport, default)
    return scheme, host, port, base
