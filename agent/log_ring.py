# The last lines the console showed, kept in RAM so that a cloud can read
# them (the log_tail command: `doorlink logs --device`). A board has no
# console anyone watches; its log must still be reachable, without letting
# a chatty or hostile log grow the heap: the ring is bounded by lines AND
# by bytes, and the oldest lines fall out first.
#
# Each line gets a sequence number that only grows for the life of the
# process; the ring holds a run of consecutive numbers, so only the texts
# are kept (as UTF-8 bytes: the byte bound is exact) and the oldest number
# is worked out. A reboot starts again at 1 under a new random boot id, so
# a reader can tell a reboot from a ring that overflowed.
import os

from agent.thing import INT

MAX_LINES = 32
MAX_BYTES = 3072
LINE_MAX = 256      # characters kept of one line (its start says what it is)
MAX_TAIL = 50       # lines one answer may hold
ANSWER_BYTES = 2048  # text one answer may hold: escaped, it still fits a 16 KB frame


class LogRing:
    __slots__ = ("boot", "_lines", "_bytes", "_next", "_max_lines", "_max_bytes")

    def __init__(self, max_lines=MAX_LINES, max_bytes=MAX_BYTES):
        if max_bytes < 4 * LINE_MAX:
            raise ValueError("max_bytes must hold at least one line (%d)" % (4 * LINE_MAX))
        # 30 bits: a small int on every MicroPython port, never 0.
        self.boot = (int.from_bytes(os.urandom(4), "big") >> 2) or 1
        self._lines = []    # UTF-8 bytes, oldest first
        self._bytes = 0
        self._next = 1      # the number the next line gets
        self._max_lines = max_lines
        self._max_bytes = max_bytes

    def add(self, text):
        if len(text) > LINE_MAX:
            text = text[:LINE_MAX]  # (a slice is a copy on MicroPython: only when needed)
        data = text.encode()
        lines = self._lines
        lines.append(data)
        self._bytes += len(data)
        self._next += 1
        while len(lines) > self._max_lines or self._bytes > self._max_bytes:
            self._bytes -= len(lines.pop(0))

    def newest(self):
        """The number of the last line added (0: none yet)."""
        return self._next - 1

    def last(self, n):
        """The newest `n` lines' texts, oldest first (the management
        channel's system/log/get)."""
        return [data.decode() for data in self._lines[-n:]] if n > 0 else []

    def clear(self):
        """Forget every line kept; numbering goes on (a follower sees the
        gap as dropped lines, not as a reboot)."""
        self._lines = []
        self._bytes = 0

    def tail(self, after=0, limit=MAX_TAIL):
        """The answer to log_tail: up to `limit` lines numbered after
        `after`, oldest first, at most ANSWER_BYTES of text; `next` is what
        to ask after next time; `dropped` counts the lines after `after`
        that fell out of the ring before they could be read; `more`: lines
        are left for the next ask."""
        oldest = self._next - len(self._lines)
        start = max(after + 1, oldest)
        out = []
        size = 0
        seq = start
        while seq < self._next and len(out) < limit:
            data = self._lines[seq - oldest]
            if out and size + len(data) > ANSWER_BYTES:
                break
            size += len(data)
            out.append([seq, data.decode()])
            seq += 1
        return {"boot": self.boot, "lines": out, "next": seq - 1 if out else min(after, self.newest()),
                "dropped": max(0, oldest - after - 1), "more": seq < self._next}


def register(thing, ring):
    """The log_tail command on `thing`: {"after": SEQ, "max": N} -> ring.tail().
    The Thing refuses a wrong type or a number out of range, naming it."""
    async def log_tail(payload):
        return ring.tail(payload.get("after", 0), payload.get("max", MAX_TAIL))
    thing.command("log_tail", log_tail, {"after": (INT, 0, 1 << 40), "max": (INT, 1, MAX_TAIL)})
