# The terminal's display: a 1-bit frame buffer the size of an SSD1306
# (128x64, 1 KB), showing what a door terminal shows: who it is, online or
# not, the door's lock and position, the last decision or punch, and a PIN
# being typed - as '*' only: the digits never reach the buffer, so no
# screenshot can show a PIN. Redrawn when what it shows changes (checked
# every POLL_MS), not on every event: an event's listener only notes it.
#
# The buffer only: no panel is driven yet (screen/snapshot reads it).
import asyncio

from agent import records as r
from agent.hal.framebuffer import make

POLL_MS = 100
COLS = 16       # 8x8 characters on a 128-pixel line
# What the bottom line asks for while no PIN is being typed, by reader mode.
HINTS = {"card": "show card", "card_pin": "card, then PIN", "pin": "enter PIN", "card_or_pin": "card or PIN"}


def _fit(text, cols=COLS):
    return text if len(text) <= cols else text[:cols - 1] + "~"


class Display:
    __slots__ = ("thing", "width", "height", "buf", "fb", "readers", "door", "_last", "_shown")

    def __init__(self, thing, cfg, door, readers):
        """`door`: the name of the door it shows (None: none); `readers`:
        the board's Wiegand readers (a list filled as they are set up),
        whose PIN entry it shows."""
        self.thing = thing
        self.width = cfg["width"]
        self.height = cfg["height"]
        self.buf, self.fb = make(self.width, self.height)
        self.door = door
        self.readers = readers
        self._last = ""      # the last decision or punch, as shown
        self._shown = None   # what the buffer shows now
        thing.listen(self._heard)

    def _heard(self, kind, name, value):
        # Called inside Thing.emit: it notes, never refuses (returns None).
        if kind != "event":
            return
        who = value.get(r.USER)
        if name == r.UNLOCKED:
            self._last = "open %s%s" % (value.get(r.SOURCE, ""), " " + str(who) if who is not None else "")
        elif name == r.ACCESS_DENIED:
            self._last = "no: %s" % value.get(r.REASON, "")
        elif name == r.PUNCH:
            self._last = "punch %s" % ("" if who is None else who)

    def show(self, text):
        """Show `text` on the line of the last event (a script's, through
        the management channel) until the next event replaces it."""
        self._last = text

    def _state(self):
        get = self.thing.get
        door = self.door
        entry = ""
        for reader in self.readers:
            if reader.door == door:
                typed = reader.typed()
                entry = "PIN " + "*" * typed if typed else HINTS[reader.mode]
                break
        return (get("online"), get(door + ".lock") if door else None, get(door + ".door") if door else None,
                self._last, entry)

    def refresh(self):
        """Redraw if what the display shows changed -> True when redrawn."""
        state = self._state()
        if state == self._shown:
            return False
        self._shown = state
        online, lock, position, last, entry = state
        fb = self.fb
        fb.fill(0)
        fb.fill_rect(0, 0, self.width, 10, 1)
        fb.text(_fit(self.thing.name), 1, 1, 0)
        fb.text("online" if online else "OFFLINE", 0, 13, 1)
        if self.door is not None:
            fb.text(_fit("%s %s" % (self.door, lock or "")), 0, 24, 1)
            fb.text(_fit("door %s" % (position or "?")), 0, 34, 1)
        fb.text(_fit(last), 0, 44, 1)
        fb.text(_fit(entry), 0, 55, 1)
        return True

    async def run(self):
        while True:
            self.refresh()
            await asyncio.sleep(POLL_MS / 1000)
