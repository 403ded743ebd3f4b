# The boot counter: how many boots in a row have not (yet) run stably.
# A board that keeps crashing - at start, or starved by its watchdog - must
# still reach its cloud, so after `safe_mode_after` unstable boots it starts
# in safe mode (docs/door-controller.md, section 7). The count lives on
# flash beside the journal and is written as the journal writes: a new
# file synced, renamed over the old one, the folder synced, so a power cut
# leaves the old count or the new, never a torn one.
import os

from agent import hal, log

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
        try:
            with open(self._folder + "/" + NAME) as f:
                text = f.read(MAX_BYTES + 1)
        except OSError:
            return 0        # first boot: no file yet
        try:
            if len(text) > MAX_BYTES:
                raise ValueError(text[:MAX_BYTES])
            n = int(text)
            if not 0 <= n <= MAX_COUNT:
                raise ValueError(text)
        except ValueError:
            log.count("boot_state_bad")
            log.warn("boot", "boot counter unreadable (%r): taken as 0" % text[:MAX_BYTES])
            return 0
        return n

    def _write(self, n):
        # A flash that refuses (full, failing) costs the counter, not the
        # agent: counted, and the door keeps working.
        path = self._folder + "/" + NAME
        try:
            with open(path + ".tmp", "w") as f:
                f.write("%d\n" % n)
                hal.sync_file(f)
            os.rename(path + ".tmp", path)
            hal.sync_dir(self._folder)
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
