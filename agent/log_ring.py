# The last lines the console showed, kept in RAM so that a cloud can read
# them (the log_tail command: `doorlink logs --device`). A board has no
# console anyone watches; its log must still be reachable, without letting
# a chatty or hostile log grow the heap: the ring is bounded by lines AND
# by bytes, and the oldest lines fall out first.
#
# Each line gets a sequence number that only grows for the life of the
# process; the ring holds a run of consecutive numbers, so only the texts
# are kept (as UTF-8 bytes, in one buffer: the byte bound is exact) and the
# oldest number is worked out. A reboot starts again at 1 under a new random boot id, so
# a reader can tell a reboot from a ring that overflowed.
import os

from agent.thing import INT

MAX_LINES = 32
MAX_BYTES = 3072
LINE_MAX = 256      # characters kept of one line (its start says what it is)
MAX_TAIL = 50       # lines one answer may hold
ANSWER_BYTES = 2048  # text one answer may hold: escaped, it still fits a 16 KB frame


class LogRing:
    __slots__ = ("boot", "_buf", "_cap", "_head", "_n", "_bytes", "_next", "_max_lines", "_max_bytes")

    def __init__(self, max_lines=MAX_LINES, max_bytes=MAX_BYTES):
        if max_bytes < 4 * LINE_MAX:
            raise ValueError("max_bytes must hold at least one line (%d)" % (4 * LINE_MAX))
        # 30 bits: a small int on every MicroPython port, never 0.
        self.boot = (int.from_bytes(os.urandom(4), "big") >> 2) or 1
        # One buffer for the life of the process: each line as 2 bytes of
        # length and its UTF-8 text, oldest first, wrapping at the end. A
        # line kept as an object of its own would sit in the heap for the
        # next 32 lines, in whatever hole was free when it was logged: one
        # per users_sync page left a board's heap in pieces no 5 KB page
        # fitted in (measured: at 352 KB 1 of 3 syncs of 10,000 users
        # passed with 32 lines as objects, 3 of 3 with none).
        self._cap = max_bytes + 2 * max_lines
        self._buf = bytearray(self._cap)
        self._head = 0      # where the oldest line starts
        self._n = 0         # lines kept
        self._bytes = 0     # their texts' bytes
        self._next = 1      # the number the next line gets
        self._max_lines = max_lines
        self._max_bytes = max_bytes

    def __len__(self):
        return self._n

    def add(self, text):
        if len(text) > LINE_MAX:
            text = text[:LINE_MAX]  # (a slice is a copy on MicroPython: only when needed)
        data = text.encode()
        size = len(data)
        while self._n and (self._n >= self._max_lines or self._bytes + size > self._max_bytes):
            oldest = self._size(self._head)
            self._bytes -= oldest
            self._head = (self._head + 2 + oldest) % self._cap
            self._n -= 1
        buf = self._buf
        cap = self._cap
        at = (self._head + self._bytes + 2 * self._n) % cap
        buf[at] = size >> 8
        buf[(at + 1) % cap] = size & 0xFF
        at = (at + 2) % cap
        k = min(size, cap - at)
        mv = memoryview(data)
        buf[at:at + k] = mv[:k]
        if k < size:
            buf[:size - k] = mv[k:]
        self._n += 1
        self._bytes += size
        self._next += 1

    def _size(self, at):
        return (self._buf[at] << 8) | self._buf[(at + 1) % self._cap]

    def _lines(self, first, count):
        """(bytes, text) of up to `count` lines from the `first` kept (0: the
        oldest), one at a time: a reader that stops early decodes no more."""
        if first >= self._n:
            return   # nothing: never a walk over a ring that holds nothing there
        buf = self._buf
        cap = self._cap
        at = self._head
        for _ in range(first):
            at = (at + 2 + self._size(at)) % cap
        for _ in range(min(count, self._n - first)):
            size = self._size(at)
            start = (at + 2) % cap
            end = start + size
            if end <= cap:
                yield size, str(memoryview(buf)[start:end], "utf-8")
            else:   # the line wraps
                yield size, str(bytes(buf[start:]) + buf[:end - cap], "utf-8")
            at = end % cap

    def newest(self):
        """The number of the last line added (0: none yet)."""
        return self._next - 1

    def last(self, n):
        """The newest `n` lines' texts, oldest first (the management
        channel's system/log/get)."""
        n = min(n, self._n)
        return [text for _, text in self._lines(self._n - n, n)] if n > 0 else []

    def clear(self):
        """Forget every line kept; numbering goes on (a follower sees the
        gap as dropped lines, not as a reboot)."""
        self._head = self._n = self._bytes = 0

    def tail(self, after=0, limit=MAX_TAIL):
        """The answer to log_tail: up to `limit` lines numbered after
        `after`, oldest first, at most ANSWER_BYTES of text; `next` is what
        to ask after next time; `dropped` counts the lines after `after`
        that fell out of the ring before they could be read; `more`: lines
        are left for the next ask."""
        oldest = self._next - self._n
        start = max(after + 1, oldest)
        out = []
        size = 0
        seq = start
        for n, text in self._lines(start - oldest, max(0, min(limit, self._next - start))):
            if out and size + n > ANSWER_BYTES:
                break
            size += n
            out.append([seq, text])
            seq += 1
        return {"boot": self.boot, "lines": out, "next": seq - 1 if out else min(after, self.newest()),
                "dropped": max(0, oldest - after - 1), "more": seq < self._next}


def register(thing, ring):
    """The log_tail command on `thing`: {"after": SEQ, "max": N} -> ring.tail().
    The Thing refuses a wrong type or a number out of range, naming it."""
    async def log_tail(payload):
        return ring.tail(payload.get("after", 0), payload.get("max", MAX_TAIL))
    thing.command("log_tail", log_tail, {"after": (INT, 0, 1 << 40), "max": (INT, 1, MAX_TAIL)})
