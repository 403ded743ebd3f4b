# The console's lines kept on flash, so that they survive a reboot (the
# management channel's system/log/get): a bounded ring of two files,
# log.N (being written) and log.N-1 (the one before), each at most
# part_bytes; when log.N is full, log.N+1 is started and log.N-1 removed.
# So between part_bytes and 2 * part_bytes of the newest lines are kept.
#
# Lines are not written as they are logged: a task copies what the RAM
# ring (agent/log_ring.py) took since last time every FLUSH_S seconds, in
# one append. A chatty moment costs one flash write, not one per line;
# lines that fall out of the RAM ring before they are copied are counted.
import asyncio
import os

from agent import log
from agent.hal import sync_file

PART_BYTES = 4096
FLUSH_S = 2
PREFIX = "log."
ENOENT = 2


def _numbers(folder):
    return sorted(int(n[len(PREFIX):]) for n in os.listdir(folder)
                  if n.startswith(PREFIX) and n[len(PREFIX):].isdigit())


class FlashLog:
    __slots__ = ("folder", "ring", "part_bytes", "_n", "_size", "_seen", "_failing")

    def __init__(self, folder, ring, part_bytes=PART_BYTES):
        self.folder = folder
        self.ring = ring
        self.part_bytes = part_bytes
        try:
            os.mkdir(folder)
        except OSError:
            pass   # there already (or the listing below says why not)
        numbers = _numbers(folder)
        for k in numbers[:-2]:   # left by a power cut between a start and a removal
            self._remove(k)
        self._n = numbers[-1] if numbers else 1
        self._size = self._file_size(self._n)
        self._seen = 0         # the RAM ring's number of the last line copied
        self._failing = False

    def _path(self, k):
        return "%s/%s%d" % (self.folder, PREFIX, k)

    def _file_size(self, k):
        try:
            return os.stat(self._path(k))[6]
        except OSError:
            return 0

    def _remove(self, k):
        try:
            os.remove(self._path(k))
        except OSError:
            pass   # not there: nothing to remove

    def flush(self):
        """Append what the RAM ring took since the last flush. OSError
        when the flash refuses (full, failing)."""
        while True:
            got = self.ring.tail(self._seen)
            if got["dropped"]:
                log.count("log_lines_not_kept", got["dropped"])
            lines = got["lines"]
            if not lines:
                self._seen = got["next"]
                return
            data = "".join([text + "\n" for _, text in lines]).encode()
            if self._size and self._size + len(data) > self.part_bytes:
                self._remove(self._n - 1)
                self._n += 1
                self._size = 0
            with open(self._path(self._n), "ab") as f:
                f.write(data)
                sync_file(f)
            self._size += len(data)
            self._seen = got["next"]
            if not got["more"]:
                return

    def last(self, n):
        """The newest `n` lines kept, oldest first (flushed first)."""
        try:
            self.flush()
        except OSError:
            pass   # what is on flash already is still worth reading
        lines = []
        for k in (self._n - 1, self._n):
            try:
                with open(self._path(k), "rb") as f:
                    data = f.read(2 * self.part_bytes)
            except OSError:
                continue
            for line in data.split(b"\n"):
                if line:
                    try:
                        lines.append(line.decode())
                    except UnicodeError:
                        pass   # torn by a power cut inside a character: the rest is still read
        return lines[-n:] if n > 0 else []

    def clear(self):
        """Forget every line, on flash and in RAM."""
        self._remove(self._n - 1)
        self._remove(self._n)
        self._n += 1
        self._size = 0
        self.ring.clear()
        self._seen = self.ring.newest()

    async def run(self):
        try:
            while True:
                await asyncio.sleep(FLUSH_S)
                self._flush_logged()
        finally:
            # Stopped (a reboot, a respring, Ctrl-C): the last lines, those
            # that say why, are kept too.
            self._flush_logged()

    def _flush_logged(self):
        try:
            self.flush()
            self._failing = False
        except OSError as e:
            log.count("log_flash_errors")
            if not self._failing:   # one line per failing spell: it would be logged to flash too
                self._failing = True
                log.warn("log", "console lines not kept on flash: %s" % e)
