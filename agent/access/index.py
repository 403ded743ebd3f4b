# The store's on-flash indexes: sorted arrays of fixed-size entries, key
# (record.KEY bytes) then the record's offset (4 bytes, big-endian), one
# array per kind (id, card, PIN, fingerprint), found by binary search with
# one small read per step. How they are built: agent/access/build.py.
from agent.access.record import KEY

ENTRY = KEY + 4


def offset_of(e):
    return int.from_bytes(e[KEY:ENTRY], "big")


def find(f, start, count, key, buf):
    """Offsets of the entries with `key` in the index at `start` (count
    entries) of the open file `f`, in order; `buf` is a bytearray(ENTRY)
    reused for every read."""
    lo, hi = 0, count
    while lo < hi:
        mid = (lo + hi) // 2
        f.seek(start + mid * ENTRY)
        if f.readinto(buf) != ENTRY:
            return
        if buf[:KEY] < key:
            lo = mid + 1
        else:
            hi = mid
    while lo < count:
        f.seek(start + lo * ENTRY)
        if f.readinto(buf) != ENTRY or buf[:KEY] != key:
            return
        yield offset_of(buf)
        lo += 1


def after(f, start, count, key, buf):
    """The position of the first entry whose key is above `key`."""
    lo, hi = 0, count
    while lo < hi:
        mid = (lo + hi) // 2
        f.seek(start + mid * ENTRY)
        if f.readinto(buf) != ENTRY:
            return count
        if buf[:KEY] <= key:
            lo = mid + 1
        else:
            hi = mid
    return lo

