# CBOR (RFC 8949), the subset the journal needs, sans-IO: bytes in, values
# out. Runs on MicroPython and CPython alike.
#
# Encoding: None, bool, int in [-2**64, 2**64-1] with the shortest head,
# float always as float64 (exact, one code path), str, bytes/bytearray/
# memoryview, list/tuple, dict with str/int keys in the dict's own order.
# All lengths definite.
#
# Decoding is strict because input may be a corrupt flash record: every
# malformed or truncated item, invalid UTF-8, reserved additional info,
# stray break, nesting deeper than MAX_DEPTH, duplicate map key or a length
# longer than the rest of the buffer raises CBORError with the byte offset.
# Lengths are checked against the buffer before anything is allocated.
# Accepted beyond what we write: float16/float32, indefinite-length items,
# `undefined` (read as None) and tags. A tag is skipped and its content
# returned as-is: the journal never writes tags, so no semantics are needed.
import struct

from agent.codecs import utf8

MAX_DEPTH = 32  # containers (arrays, maps, tags) nested in one another


class CBORError(ValueError):
    pass


_BREAK = object()


# -- encoding ---------------------------------------------------------------

def _head(out, major, n):
    mt = major << 5
    if n < 24:
        out.append(mt | n)
    elif n < 0x100:
        out.append(mt | 24)
        out.append(n)
    elif n < 0x10000:
        out.extend(struct.pack(">BH", mt | 25, n))
    elif n < 0x100000000:
        out.extend(struct.pack(">BI", mt | 26, n))
    else:
        out.extend(struct.pack(">BQ", mt | 27, n))


def _enc(out, x, depth):
    # bool before int: on CPython True is an int.
    if x is None:
        out.append(0xF6)
    elif x is True or x is False:
        out.append(0xF5 if x else 0xF4)
    elif isinstance(x, int):
        if x >= 0:
            if x > 0xFFFFFFFFFFFFFFFF:
                raise CBORError("int out of range: %d" % x)
            _head(out, 0, x)
        else:
            if x < -0x10000000000000000:
                raise CBORError("int out of range: %d" % x)
            _head(out, 1, -1 - x)
    elif isinstance(x, float):
        out.extend(struct.pack(">Bd", 0xFB, x))
    elif isinstance(x, str):
        try:
            b = x.encode("utf-8")
        except UnicodeError:
            raise CBORError("str is not encodable as UTF-8")
        # MicroPython encodes a lone surrogate ("\ud800", valid in JSON) into
        # bytes its own decoder refuses: a record that could be written but
        # never read back. Refuse it here, before the journal hands out an id.
        if utf8.LAX and len(b) != len(x) and not utf8.valid(memoryview(b), 0, len(b)):
            raise CBORError("str holds a lone surrogate: not valid UTF-8")
        _head(out, 3, len(b))
        out.extend(b)
    elif isinstance(x, (bytes, bytearray, memoryview)):
        _head(out, 2, len(x))
        out.extend(x)
    elif isinstance(x, (list, tuple, dict)):
        # Refuse what decode() would refuse, and stop self-referencing data.
        if depth >= MAX_DEPTH:
            raise CBORError("nesting deeper than %d" % MAX_DEPTH)
        if isinstance(x, dict):
            _head(out, 5, len(x))
            for k, v in x.items():
                if not isinstance(k, (str, int)) or k is True or k is False:
                    raise CBORError("unsupported map key type: %s" % type(k).__name__)
                _enc(out, k, depth + 1)
                _enc(out, v, depth + 1)
        else:
            _head(out, 4, len(x))
            for v in x:
                _enc(out, v, depth + 1)
    else:
        raise CBORError("unsupported type: %s" % type(x).__name__)


def encode(obj):
    out = bytearray()
    _enc(out, obj, 0)
    return bytes(out)


# -- decoding ---------------------------------------------------------------

def _err(msg, pos):
    return CBORError("%s at offset %d" % (msg, pos))


_FMT = (">B", ">H", ">I", ">Q")


def _arg(mv, pos, ai):
    """Argument of a head whose first byte is at pos -> (value, next_pos)."""
    if ai < 24:
        return ai, pos + 1
    if ai > 27:
        raise _err("reserved additional info %d" % ai, pos)
    size = 1 << (ai - 24)
    if pos + 1 + size > len(mv):
        raise _err("truncated input", pos)
    return struct.unpack_from(_FMT[ai - 24], mv, pos + 1)[0], pos + 1 + size


def _half(h):
    # struct's "e" format is missing on MicroPython; float16 by hand.
    e, m = (h >> 10) & 0x1F, h & 0x3FF
    if e == 0:
        v = m * 2.0 ** -24
    elif e == 31:
        v = float("nan") if m else float("inf")
    else:
        v = (1024 + m) * 2.0 ** (e - 25)
    return -v if h & 0x8000 else v


def _string(mv, pos):
    """A string's bytes -> (start, end); checked against the buffer size."""
    n, p = _arg(mv, pos, mv[pos] & 0x1F)
    if n > len(mv) - p:
        raise _err("length %d exceeds input" % n, pos)
    return p, p + n


def _text(mv, a, b):
    try:
        if utf8.LAX and not utf8.valid(mv, a, b):
            raise UnicodeError
        return str(mv[a:b], "utf-8")
    except UnicodeError:
        raise _err("invalid UTF-8", a)


def _item(mv, pos, depth):
    """Decode one item at pos -> (value, next_pos); _BREAK for 0xff."""
    if pos >= len(mv):
        raise _err("truncated input", pos)
    ib = mv[pos]
    major, ai = ib >> 5, ib & 0x1F
    if major == 7:
        if ai < 24:
            if 20 <= ai <= 23:
                return (False, True, None, None)[ai - 20], pos + 1
            raise _err("unsupported simple value %d" % ai, pos)
        if ai == 31:
            return _BREAK, pos + 1
        if ai == 24:
            raise _err("unsupported simple value", pos)
        v, p = _arg(mv, pos, ai)
        if ai == 25:
            return _half(v), p
        return struct.unpack_from(">f" if ai == 26 else ">d", mv, pos + 1)[0], p
    if ai == 31:
        if major < 2 or major == 6:
            raise _err("indefinite length not allowed for major type %d" % major, pos)
    elif major < 2:
        n, p = _arg(mv, pos, ai)
        return (n if major == 0 else -1 - n), p
    elif major < 4:
        a, b = _string(mv, pos)
        return (bytes(mv[a:b]) if major == 2 else _text(mv, a, b)), b
    if depth >= MAX_DEPTH:
        raise _err("nesting deeper than %d" % MAX_DEPTH, pos)
    if ai == 31:
        n, p = -1, pos + 1
    else:
        n, p = _arg(mv, pos, ai)
        # Every item takes at least one byte: a bigger count is corrupt.
        if major != 6 and n * (major - 3) > len(mv) - p:
            raise _err("count %d exceeds input" % n, pos)
    if major == 6:
        v, p = _item(mv, p, depth + 1)
        if v is _BREAK:
            raise _err("unexpected break", p - 1)
        return v, p
    if major < 4:  # indefinite string: definite chunks of the same type
        parts = []
        while True:
            if p >= len(mv):
                raise _err("truncated input", p)
            if mv[p] == 0xFF:
                break
            if mv[p] >> 5 != major or mv[p] & 0x1F == 31:
                raise _err("bad chunk in indefinite string", p)
            a, b = _string(mv, p)
            parts.append(bytes(mv[a:b]) if major == 2 else _text(mv, a, b))
            p = b
        return (b"" if major == 2 else "").join(parts), p + 1
    out = [] if major == 4 else {}
    while n:
        n -= 1
        start = p
        k, p = _item(mv, p, depth + 1)
        if k is _BREAK:
            if n >= 0:
                raise _err("unexpected break", start)
            return out, p
        if major == 4:
            out.append(k)
            continue
        v, p = _item(mv, p, depth + 1)
        if v is _BREAK:
            raise _err("unexpected break", p - 1)
        try:
            if k in out:
                raise _err("duplicate map key", start)
            out[k] = v
        except TypeError:
            raise _err("unhashable map key", start)
    return out, p


def decode_from(data, pos=0):
    """Decode the item starting at pos -> (value, next_pos), so that records
    stored one after the other can be read in turn."""
    mv = memoryview(data)
    if pos < 0:
        raise _err("bad position", pos)
    v, p = _item(mv, pos, 0)
    if v is _BREAK:
        raise _err("unexpected break", pos)
    return v, p


def decode(data):
    """Decode a buffer holding exactly one item."""
    v, p = decode_from(data)
    if p != len(data):
        raise _err("%d trailing bytes" % (len(data) - p), p)
    return v
