# The terminal's display: a 1-bit frame buffer the size of an SSD1306
# (128x64, 1 KB), showing what a door terminal shows: who it is, online or
# not, the door's lock and position, the last decision or punch, and a PIN
# being typed - as '*' only: the digits never reach the buffer, so no
# screenshot can show a PIN. Redrawn when what it shows changes (checked
# every POLL_MS), not on every event: an event's listener only notes it.
#
# screen/snapshot reads the buffer; a board whose display config names a
# panel ("panel": "ssd1306") also gets each redraw written to it, so the
# panel shows exactly what a snapshot shows. A panel that does not answer
# (missing, wrong address, a loose cable) is logged once per outage and
# counted (display_errors), and tried again at most every RETRY_MS: the
# door goes on, and the buffer (and screen/snapshot) with it.
import asyncio

from agent import log
from agent import records as r
from agent.hal import ticks_diff, ticks_ms
from agent.hal.framebuffer import make

POLL_MS = 100
RETRY_MS = 5000
COLS = 16       # 8x8 characters on a 128-pixel line
# What the bottom line asks for while no PIN is being typed, by reader mode.
HINTS = {"card": "show card", "card_pin": "card, then PIN", "pin": "enter PIN", "card_or_pin": "card or PIN"}


def _fit(text, cols=COLS):
    return text if len(text) <= cols else text[:cols - 1] + "~"


class Display:
    __slots__ = ("thing", "width", "height", "buf", "fb", "readers", "door", "_last", "_shown", "panel",
                 "_panel_ok", "_tried", "_dirty")

    def __init__(self, thing, cfg, door, readers, io=None):
        """`door`: the name of the door it shows (None: none); `readers`:
        the board's Wiegand readers (a list filled as they are set up),
        whose PIN entry it shows; `io`: the board's hal, which opens the
        I2C bus to a panel the config names (None: the buffer only)."""
        self.thing = thing
        self.width = cfg["width"]
        self.height = cfg["height"]
        self.buf, self.fb = make(self.width, self.height)
        self.door = door
        self.readers = readers
        self._last = ""      # the last decision or punch, as shown
        self._shown = None   # what the buffer shows now
        self.panel = None
        self._panel_ok = False   # the last write to the panel went through
        self._tried = None       # ticks_ms of the last failed one (None: none failed)
        self._dirty = False      # the buffer holds what the panel does not yet show
        thing.listen(self._heard)
        if io is not None and cfg["panel"]:
            self._open_panel(cfg, io)

    def _open_panel(self, cfg, io):
        i2c = io.i2c(cfg)
        if i2c is None:
            log.info("display", "this board drives no panel (an emulated board): the display is its buffer only")
            return
        from agent.hal.ssd1306 import Ssd1306
        self.panel = Ssd1306(i2c, self.width, self.height, cfg["i2c_address"])
        # At start: a panel that is not there says so now, in one line.
        self._push()

    def _push(self):
        for _ in self._pushing():
            pass

    def _pushing(self):
        """Write the buffer to the panel, one I2C write per step (a
        generator) - after a failure, only once RETRY_MS passed, and with
        the panel set up again (it may have been unplugged: a re-seated one
        starts off, its RAM noise)."""
        panel = self.panel
        if panel is None:
            return
        if not self._panel_ok and self._tried is not None and ticks_diff(ticks_ms(), self._tried) < RETRY_MS:
            return
        # Cleared first: drawn again meanwhile (a snapshot's draw), the
        # buffer goes out once more after this frame.
        self._dirty = False
        try:
            if not self._panel_ok:
                panel.init()
                yield
            panel.begin(self.buf)
            while panel.step():
                yield
        except OSError as e:
            self._dirty = True
            log.count("display_errors")
            if self._panel_ok or self._tried is None:
                log.error("display", "%s; the display goes on without it, trying again every %d s"
                          % (e, RETRY_MS // 1000))
            self._panel_ok = False
            self._tried = ticks_ms()
            return
        if self._tried is not None:
            log.info("display", "%s answers again" % panel.where())
            self._tried = None
        self._panel_ok = True

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
        """Redraw if what the display shows changed, and write the panel
        -> True when redrawn."""
        if not self.draw():
            return False
        self._push()
        return True

    def draw(self):
        """Draw the buffer if what the display shows changed -> whether;
        the panel gets it from run()."""
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
        self._dirty = True
        return True

    async def run(self):
        while True:
            # Redrawn, or a panel that failed tried again (at most every
            # RETRY_MS): written a write at a time, the loop running between
            # (an exit button or a card is not kept waiting for a frame).
            self.draw()
            if self.panel is not None and (self._dirty or not self._panel_ok):
                for _ in self._pushing():
                    await asyncio.sleep(0)
            await asyncio.sleep(POLL_MS / 1000)
