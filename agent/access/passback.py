# Timed anti-passback: who passed which door, and when, for the last
# SLOTS grants, in one buffer allocated at start (a dict of a few hundred
# tuples and strings would cost several times the RAM on MicroPython and
# grow the heap's fragmentation with every card).
#
# A slot: crc32 of "user id | door" (4 bytes) | hal.ticks_ms of the grant
# (8) | the door's window in ms (4). Two pairs sharing a CRC would at worst
# hold one of them back for the window: rare enough for 256 slots. When
# every slot is in use the oldest grant is forgotten, so a board under a
# flood of distinct users lets the oldest of them pass early rather than
# running out of memory.
from binascii import crc32

from agent import hal

SLOTS = 256
SLOT = 16


def key(uid, door):
    return (crc32(door.encode(), crc32(uid.encode() + b"|")) & 0xFFFFFFFF).to_bytes(4, "big")


class Passback:
    __slots__ = ("_t",)

    def __init__(self):
        self._t = bytearray(SLOTS * SLOT)

    def _find(self, k):
        t = self._t
        i = t.find(k)
        while i >= 0:
            if i % SLOT == 0 and _window(t, i):
                return i
            i = t.find(k, i + 1)
        return -1

    def blocked(self, uid, door, now):
        """Whether `uid` passed `door` within the door's window before `now`."""
        i = self._find(key(uid, door))
        return i >= 0 and hal.ticks_diff(now, _when(self._t, i)) < _window(self._t, i)

    def passed(self, uid, door, now, window_ms):
        """`uid` was let through `door` at `now`."""
        t = self._t
        k = key(uid, door)
        at = self._find(k)
        if at < 0:
            oldest = -1
            for i in range(0, len(t), SLOT):
                w = _window(t, i)
                if not w or hal.ticks_diff(now, _when(t, i)) >= w:
                    at = i   # free, or its window is over
                    break
                if oldest < 0 or hal.ticks_diff(_when(t, oldest), _when(t, i)) > 0:
                    oldest = i
            if at < 0:
                at = oldest
        t[at:at + 4] = k
        t[at + 4:at + 12] = now.to_bytes(8, "big")
        t[at + 12:at + 16] = window_ms.to_bytes(4, "big")


def _when(t, i):
    return int.from_bytes(t[i + 4:i + 12], "big")


def _window(t, i):
    return int.from_bytes(t[i + 12:i + 16], "big")
