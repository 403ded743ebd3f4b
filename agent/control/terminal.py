# The work of screen/snapshot, key/* and touch/* (agent/control/screen.py
# says which and loads this module for one request at a time).
#
# An injected key goes where a real one goes, Reader.frame(): the reader's
# own rules (its mode, the PIN timeout, the lockout after wrong PINs) apply
# to it, and a PIN it completes is decided and journaled as any PIN is.
# Keys are counted, never logged: their digits are a PIN.
from agent import hal, log
from agent.codecs.ints import is_int
from agent.codecs.wiegand import CLEAR, ENTER
from agent.errors import CommandError

SCALES = (100, 200, 300, 400)   # the seed's `scale` is a percentage
KEYS = {"*": CLEAR, "#": ENTER, "CLEAR": CLEAR, "ENTER": ENTER}
KEY_HELP = 'needs {"code": "0".."9", "*" (or "CLEAR") or "#" (or "ENTER")}, optional "door"'


def _scale(body):
    if body is None:
        return 1
    fmt = body.get("format", "png") if isinstance(body, dict) else None
    scale = body.get("scale", 100) if isinstance(body, dict) else None
    if fmt != "png":
        raise CommandError('screen/snapshot makes PNG only: {"format": "png", "scale": 100}')
    if not is_int(scale) or scale not in SCALES:
        raise CommandError("screen/snapshot scale is a percentage: 100, 200, 300 or 400, got %r" % (scale,))
    return scale // 100


def _key(body):
    code = body.get("code") if isinstance(body, dict) else None
    if isinstance(code, str) and len(code) == 1 and "0" <= code <= "9":
        return ord(code) - 48
    key = KEYS.get(code) if isinstance(code, str) else None
    if key is None:
        raise CommandError("%s, got %r" % (KEY_HELP, code if not isinstance(code, str) else code[:16]))
    return key


def _reader(device, body):
    door = body.get("door") if isinstance(body, dict) else None
    readers = device.readers
    if not readers:
        raise CommandError("no keypad on this board: it has no Wiegand reader")
    for reader in readers:
        if door is None or reader.door == door:
            if reader.mode == "card":
                raise CommandError("the reader at door %s takes cards only (mode card): no keys" % reader.door)
            return reader
    raise CommandError("no reader at door %r (doors with one: %s)"
                       % (str(door)[:32], ", ".join(rd.door for rd in readers)))


async def serve(req, body, device, heap):
    """One request (`req`) -> its reply body; CommandError saying why.
    `heap`: the board's heap in bytes (MicroPython), else 0."""
    if req == "screen/snapshot":
        return _snapshot(body, device.display, heap)
    if req == "key/down":
        key = _key(body)
        reader = _reader(device, body)
        log.count("control_keys")
        if key == ENTER:
            # Who typed a PIN that opens a door is in the journal as "pin":
            # the log says that it came over the channel.
            log.info("control", "keypad ENTER pressed over the control channel at door %s" % reader.door)
        await reader.frame(key, 4, hal.ticks_ms())
        return None
    if req == "key/up":
        # The keypad sends a key when pressed; its release says nothing.
        _key(body)
        _reader(device, body)
        return None
    # touch/*
    if device.display is None:
        raise CommandError("no display on this board")
    raise CommandError("no touch panel: the display is %dx%d without touch; "
                       "press keys with key/down (codes 0-9, *, #)" % (device.display.width, device.display.height))


def _snapshot(body, display, heap):
    if display is None:
        raise CommandError("no display on this board")
    scale = _scale(body)
    from agent.codecs import png
    # The PNG, a copy, its base64 and the reply's text, at the worst (noise).
    need = png.max_size(display.width, display.height, scale) * 4
    live = hal.heap_live() if heap else None
    if live is not None and live + need > heap:
        raise CommandError("too large for the heap now: scale %d needs about %d KB free, %d KB free"
                           % (scale * 100, need // 1024, (heap - live) // 1024))
    display.draw()   # the buffer as of now; the panel gets it from the display's own task
    data = png.encode(display.buf, display.width, display.height, scale)
    import binascii
    return binascii.b2a_base64(data, newline=False).decode()
