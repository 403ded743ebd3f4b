# Strict UTF-8, the same on both runtimes. CPython's decoder is strict;
# MicroPython's accepts overlong forms, surrogates and code points past
# U+10FFFF, so there such text is checked by hand. Text that one runtime
# would take and the other refuse is how a record gets written and then
# lost, or a frame accepted by the device and refused by the cloud.


def _lax():
    try:
        str(b"\xed\xa0\x80", "utf-8")
        return True
    except UnicodeError:
        return False


LAX = _lax()


def valid(mv, i, end):
    """Whether bytes mv[i:end] are strict UTF-8 (a plain loop: no copy)."""
    while i < end:
        c = mv[i]
        if c < 0x80:
            i += 1
            continue
        # (continuation bytes, allowed range of the first one): the ranges
        # exclude overlong forms, surrogates and values above U+10FFFF.
        if 0xC2 <= c <= 0xDF:
            n, lo, hi = 1, 0x80, 0xBF
        elif 0xE0 <= c <= 0xEF:
            n, lo, hi = 2, (0xA0 if c == 0xE0 else 0x80), (0x9F if c == 0xED else 0xBF)
        elif 0xF0 <= c <= 0xF4:
            n, lo, hi = 3, (0x90 if c == 0xF0 else 0x80), (0x8F if c == 0xF4 else 0xBF)
        else:
            return False
        if i + n >= end or not lo <= mv[i + 1] <= hi:
            return False
        for j in range(i + 2, i + n + 1):
            if mv[j] & 0xC0 != 0x80:
                return False
        i += n + 1
    return True


def decode(buf):
    """str from strict UTF-8 bytes; ValueError otherwise."""
    try:
        text = str(buf, "utf-8")
    except UnicodeError:
        raise ValueError("invalid UTF-8")
    # All ASCII (as many characters as bytes) needs no second look.
    if LAX and len(text) != len(buf) and not valid(memoryview(buf), 0, len(buf)):
        raise ValueError("invalid UTF-8")
    return text


def check(buf):
    """`buf` itself when it is strict UTF-8 (nothing decoded, nothing
    copied: a large message need not fit in the heap twice); ValueError
    otherwise."""
    if not len(buf) or max(buf) < 0x80:
        return buf   # ASCII: max() runs in C and allocates nothing
    if LAX:
        ok = valid(memoryview(buf), 0, len(buf))
    else:
        try:
            str(buf, "utf-8")   # CPython: its strict decoder, a copy it has room for
            ok = True
        except UnicodeError:
            ok = False
    if not ok:
        raise ValueError("invalid UTF-8")
    return buf


def encodes(text):
    """Whether `text` encodes to strict UTF-8 (on MicroPython a str can
    hold a lone surrogate, which encodes to bytes nobody decodes)."""
    try:
        b = text.encode()
    except UnicodeError:
        return False
    return not LAX or len(b) == len(text) or valid(memoryview(b), 0, len(b))
