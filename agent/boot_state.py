# The boot counter: how many boots in a row have not (yet) run stably.
# A board that keeps crashing - at start, or starved by its watchdog - must
# still reach its cloud, so after `safe_mode_after` unstable boots it starts
# in safe mode (docs/door-controller.md, section 7). The count lives on
# flash beside the journal, written by agent/small_file.py so that a power
# cut leaves the old count or the new, never a torn one.
from agent import log

# A dot first: no device id starts with one, so no journal folder is named so.
NAME = ".boots"
MAX_BYTES = 16      # a count is a few digits: anything longer is not ours
MAX_COUNT = 9999


class BootState:
    __slots__ = ("_folder", "_after", "count", "safe")

    def __init__(self, folder, safe_mode_after):
        self._folder = folder
        self._after = safe_mode_after
        self.count = 0      # unstable boots before this one
        self.safe = False

    def _read(self):
        from agent import small_file
        try:
            data = small_file.read(self._folder, NAME, MAX_BYTES)
        except OSError:
            data = None
        if data is None:
            return 0        # first boot: no file yet
        try:
            if len(data) > MAX_BYTES:
                raise ValueError
            n = int(data)
            if not 0 <= n <= MAX_COUNT:
                raise ValueError
        except ValueError:
            log.count("boot_state_bad")
            log.warn("boot", "boot counter unreadable (%r): taken as 0" % data[:MAX_BYTES])
            return 0
        return n

    def _write(self, n):
        # A flash that refuses (full, failing) costs the counter, not the
        # agent: counted, and the door keeps working.
        from agent import small_file
        try:
            small_file.write(self._folder, NAME, "%d\n" % n)
        except OSError as e:
            log.count("boot_state_errors")
            log.warn("boot", "boot counter not written: %s" % e)
            return False
        return True

    def begin(self):
        """Count this boot (durably, before anything else can crash) ->
        True when it is to start in safe mode. A count that cannot be
        written cannot end in safe mode either: this boot starts normally."""
        self.count = self._read()
        self.safe = self._write(min(self.count + 1, MAX_COUNT)) and 0 < self._after <= self.count
        if self.safe:
            log.warn("boot", "safe mode: %d unstable boots in a row" % self.count)
        return self.safe

    def stable(self):
        """This boot ran stably, or ends cleanly: the next one starts normally."""
        self._write(0)
