# Reconnect/restart pacing: exponential backoff with full jitter (the AWS
# scheme), so a fleet that lost its cloud at the same moment does not come
# back in lockstep. The attempt counter resets only after the link stayed up
# for `reset_after_s`, so a server that accepts and then drops at once still
# gets slower retries (the protocol document's Node.js example resets on open: it hammers).
import os

from agent.hal import ticks_diff, ticks_ms


def _entropy():
    # os.urandom is the hardware RNG on an ESP32: boards flashed with the
    # same firmware still draw different delays (a PRNG seeded the same way
    # at boot would put a whole fleet in lockstep).
    return int.from_bytes(os.urandom(4), "big") / 4294967296


class Backoff:
    __slots__ = ("base", "cap", "reset_after_ms", "attempt", "_up_since", "_rand")

    def __init__(self, base_s=1.0, cap_s=30.0, reset_after_s=30.0, rand=None):
        self.base = base_s
        self.cap = cap_s
        self.reset_after_ms = int(reset_after_s * 1000)
        self.attempt = 0
        self._up_since = None
        self._rand = rand or _entropy

    def next_delay(self):
        """Seconds to wait before the next try (uniform in [0, ceiling])."""
        ceiling = min(self.cap, self.base * (2 ** min(self.attempt, 30)))
        self.attempt += 1
        return self._rand() * ceiling

    def up(self):
        """The link (or task) is running from now on."""
        self._up_since = ticks_ms()

    def down(self):
        """It stopped; forget past failures only if it had been stable."""
        if self._up_since is not None:
            if ticks_diff(ticks_ms(), self._up_since) >= self.reset_after_ms:
                self.attempt = 0
            self._up_since = None
