from agent.codecs.url import split_hostport, split_url

from support import raises


def test_split_url():
    assert split_url("http://h") == ("http", "h", 80, "")
    assert split_url("https://h/") == ("https", "h", 443, "")
    assert split_url("https://h:8443/cloud/") == ("https", "h", 8443, "/cloud")
    assert split_url("http://[::1]:81/x") == ("http", "::1", 81, "/x")
    assert split_url("wss://h/ws") == ("wss", "h", 443, "/ws")
    for bad in ("ftp://h", "http://", "http://h:port", "h:80", "http://h:99999/"):
        raises(ValueError, split_url, bad)
    e = raises(ValueError, split_url, "ws://h/ws", ("http", "https"))
    assert "http:// or https://" in str(e)


def test_split_hostport():
    assert split_hostport("127.0.0.1:8780") == ("127.0.0.1", 8780)
    assert split_hostport(" [::1]:9 ") == ("::1", 9)
    assert split_hostport("localhost", 0) == ("localhost", 0)
    assert split_hostport("[::1]", 80) == ("::1", 80)
    for bad in ("127.0.0.1", "host:port", ":80", "h:70000", "[::1", "[::1]x", "h:-1", "h:+80"):
        e = raises(ValueError, split_hostport, bad)
        assert bad.strip() in str(e) or "port" in str(e), (bad, str(e))
