# A JSON message from a peer, as text or as the UTF-8 bytes of a WebSocket
# text message (checked by agent/codecs/websocket.py, not decoded): parsed
# from the bytes, a message of several KB needs one block of its size in
# the heap, not two (on a fragmented board heap the second one is what a
# users_sync page did not find). Shared by the JSON WebSocket uplink and
# the management channel.
import json

OPENS, B_OPENS = ("[", "{"), (b"[", b"{")
BOM = b"\xef\xbb\xbf"
SHOWN = 60   # bytes of a malformed message an error message quotes


class TooComplex(ValueError):
    """More arrays and objects than the caller allows."""


def loads(data, max_containers):
    """`data`'s JSON value; TooComplex, or ValueError saying what is wrong
    (quoting the message's head), before anything is built."""
    text = isinstance(data, str)
    if not text and (b"\x00" in data or data[:3] == BOM):
        # CPython's json.loads takes bytes in UTF-16 or 32 (their NULs) or
        # behind a BOM, MicroPython's does not: refused on both. (The two
        # parsers still differ at JSON's edges: MicroPython takes [1,] and
        # 01, CPython NaN. Nothing here relies on either.)
        raise ValueError("a NUL byte or a byte order mark")
    opens = OPENS if text else B_OPENS
    # json.loads builds every array and object of a message before anyone
    # sees one: a few KB of "[[[[..." hold far more heap than a board has.
    if data.count(opens[0]) + data.count(opens[1]) > max_containers:
        raise TooComplex("over %d arrays and objects" % max_containers)
    try:
        return json.loads(data)
    except ValueError:
        raise ValueError(repr(head(data)))


def head(data, n=SHOWN):
    """The first n characters of a message (str or checked UTF-8 bytes),
    as text, marked when cut: what an error message quotes of it, the
    same for a message's text and for its bytes."""
    if isinstance(data, str):
        return data if len(data) <= n else data[:n] + "..."
    k = 0
    chars = 0
    while k < len(data) and k < 4 * n:
        if data[k] & 0xC0 != 0x80:   # the first byte of a character
            if chars == n:
                break
            chars += 1
        k += 1
    try:
        return str(data[:k], "utf-8") + ("..." if k < len(data) else "")
    except UnicodeError:
        return "(%d bytes, not UTF-8)" % len(data)   # bytes nobody checked
