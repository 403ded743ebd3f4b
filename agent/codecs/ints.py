# The project's one integer check and coercion, apart from the time-stamp
# code in values.py: a board that never reads a time stamp (a door on JSON
# WebSocket) loads only this (code is heap on MicroPython).
DIGITS = "0123456789"


def is_int(v):
    """A JSON integer: an int that is not a bool (True is an int in Python)."""
    return isinstance(v, int) and not isinstance(v, bool)


def as_int(v):
    """An int, or text holding one (ASCII digits, optional sign, padding
    allowed) -> int; anything else (bool, float, "1_0", "0x1f") -> None."""
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if not isinstance(v, str):
        return None
    s = v.strip()
    body = s[1:] if s[:1] in ("-", "+") else s
    if not body or len(body) > 18:
        return None
    for c in body:
        if c not in DIGITS:
            return None
    return int(s)
