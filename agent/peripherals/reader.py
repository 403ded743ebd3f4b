# A Wiegand card reader and/or keypad at one door: frames become
# credentials, keys become a PIN, and each credential goes to the access
# controller, which decides and journals. Nothing here is written to
# flash: a PIN in particular lives only in this object, and only until it
# is submitted, cleared or timed out.
#
# State is bounded whatever the wires say: one pending card, at most
# MAX_PIN digits, one timer.
import asyncio

from agent import hal, log
from agent.codecs.wiegand import CLEAR, ENTER, decode

MODES = ("card", "card_pin", "pin", "card_or_pin")
MAX_PIN = 8
POLL_MS = 20


def _count(name):
    # A reader with a missing ground sends noise for as long as it is
    # powered: count every frame, log only the 1st, 2nd, 4th, 8th...
    log.count(name)
    n = log.counters[name]
    if not n & (n - 1):
        log.warn("reader", "%s (%d so far)" % (name.replace("_", " "), n))


class Reader:
    __slots__ = ("access", "door", "mode", "port", "_timeout_ms", "_pin", "_card", "_since", "_lost")

    def __init__(self, access, io, cfg):
        if cfg["mode"] not in MODES:
            raise ValueError("mode must be one of %s, got %r" % (", ".join(MODES), cfg["mode"]))
        if cfg["d0_pin"] == cfg["d1_pin"]:
            raise ValueError("d0_pin and d1_pin must be two pins, got %d for both" % cfg["d0_pin"])
        self.access = access
        self.door = cfg["door"]
        self.mode = cfg["mode"]
        self.port = io.wiegand(cfg["d0_pin"], cfg["d1_pin"], cfg["frame_gap_ms"])
        self._timeout_ms = int(cfg["pin_timeout_s"] * 1000)
        self._pin = ""
        self._card = None   # card_pin: the card waiting for its PIN
        self._since = 0     # when the last card or key of the entry came
        self._lost = 0

    async def run(self):
        """Take frames from the port as they end (a supervised task)."""
        while True:
            now = hal.ticks_ms()
            got = self.port.take(now)
            if got is None:
                self.expire(now)
                await asyncio.sleep(POLL_MS / 1000)
            else:
                await self.frame(got[0], got[1], now)

    async def frame(self, value, nbits, now_ms):
        """One whole frame from the port, taken at now_ms."""
        lost = self.port.lost
        if lost != self._lost:
            log.count("wiegand_frames_lost", lost - self._lost)
            self._lost = lost
        self.expire(now_ms)
        got = decode(value, nbits)
        kind = got[0]
        if kind == "card":
            await self._on_card(got[1], now_ms)
        elif kind == "key":
            await self._on_key(got[1], now_ms)
        else:
            _count("wiegand_" + kind)

    def typed(self):
        """Digits of the PIN being typed (how many, never which: the display
        shows them as '*')."""
        return len(self._pin)

    def expire(self, now_ms):
        """Drop an entry left unfinished for pin_timeout_s."""
        if (self._pin or self._card is not None) and hal.ticks_diff(now_ms, self._since) >= self._timeout_ms:
            self._clear()
            log.count("wiegand_pin_timeouts")

    def _clear(self):
        self._pin = ""
        self._card = None

    async def _on_card(self, number, now_ms):
        if self.mode == "pin":
            log.count("wiegand_cards_ignored")
            return
        self._clear()
        if self.mode == "card_pin":
            # A second card restarts the entry: the PIN goes with the last card shown.
            self._card = number
            self._since = now_ms
            return
        await self._present("card", number, None)

    async def _on_key(self, key, now_ms):
        if self.mode == "card" or (self.mode == "card_pin" and self._card is None):
            log.count("wiegand_keys_ignored")
            return
        self._since = now_ms
        if key == CLEAR:
            # The first `*` wipes a mistyped PIN; one more gives the card back too.
            if not self._pin:
                self._card = None
            self._pin = ""
        elif key == ENTER:
            if self._pin:
                pin, card = self._pin, self._card
                self._clear()
                await self._present("pin" if card is None else "card_pin", card, pin)
        elif len(self._pin) < MAX_PIN:
            self._pin += str(key)
        else:
            log.count("wiegand_pin_overflow")

    async def _present(self, source, card, pin):
        try:
            await self.access.present(self.door, source, card=card, pin=pin)
        except Exception as e:  # noqa: BLE001 - a failed decision must not stop the reader
            log.count("reader_errors")
            log.error("reader", "%s at %s not decided: %s" % (source, self.door, e))
