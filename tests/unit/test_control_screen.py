# screen/snapshot, key/* and touch/* (agent/control/screen.py) over the
# terminal's display (agent/peripherals/display.py), on both runtimes: the
# PNG decodes (a reader here, on each runtime's own zlib) to exactly what
# the frame buffer holds, at every scale; keys typed over the channel reach
# the door's reader as a keypad's would, a PIN typed so opens the door and
# shows only as '*'; hostile bodies are refused with the reason.
import binascii
import struct

from test_access_reader import PIN, decisions, door_with_reader, opened

from agent import config
from agent.codecs import png
from agent.control import screen
from agent.errors import CommandError
from agent.peripherals.display import Display

from support import MICROPYTHON, araises


def inflate(data):
    if MICROPYTHON:
        import io

        import deflate
        return deflate.DeflateIO(io.BytesIO(data), deflate.ZLIB).read()
    import zlib
    return zlib.decompress(data)


def read_png(data):
    """(width, height, its rows unfiltered: see lit()) of a 1-bit grayscale PNG, each
    chunk's CRC checked; rows filtered None or Up (what the writer uses)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, {}
    while pos < len(data):
        n = struct.unpack(">I", data[pos:pos + 4])[0]
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
        crc = struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])[0]
        assert crc == binascii.crc32(body, binascii.crc32(kind)) & 0xFFFFFFFF, kind
        chunks[kind] = chunks.get(kind, b"") + body
        pos += 12 + n
    assert b"IEND" in chunks
    w, h, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", chunks[b"IHDR"])
    assert (depth, color, interlace) == (1, 0, 0)
    raw = inflate(chunks[b"IDAT"])
    stride = 1 + (w + 7) // 8
    assert len(raw) == h * stride
    rows, above = [], bytearray(stride)
    for y in range(h):
        line = bytearray(raw[y * stride:(y + 1) * stride])
        assert line[0] in (0, 2)
        if line[0] == 2:
            for i in range(1, stride):
                line[i] = (line[i] + above[i]) & 0xFF
        above = line
        rows.append(line)
    return w, h, rows


def lit(rows, x, y):
    return (rows[y][1 + (x >> 3)] >> (7 - (x & 7))) & 1


class Device:
    def __init__(self, display=None, readers=()):
        self.display = display
        self.readers = list(readers)
        self.board = {"heap_kb": None}


def terminal(mode="card_or_pin"):
    board, store, reader = door_with_reader(mode)
    board.thing.prop("online", False)   # the device's own property (agent/device.py)
    display = Display(board.thing, config.peripheral("display", {}), "front", [reader])
    handlers = {}
    screen.register(handlers, Device(display, [reader]))
    return board, store, reader, display, handlers


def text_at(display, text, y):
    """True when `text` is what the display's line at y shows (8x8 glyphs
    from x 0, the rest of the line dark)."""
    from agent.hal.framebuffer import make
    _, ref = make(display.width, 16)
    ref.text(text, 0, 0, 1)
    return all(display.fb.pixel(x, y + r) == ref.pixel(x, r) for r in range(8) for x in range(display.width))


async def test_the_snapshot_is_a_png_of_the_frame_buffer_at_every_scale():
    board, store, reader, display, h = terminal()
    display.refresh()
    assert text_at(display, "OFFLINE", 13)
    assert text_at(display, "front locked", 24)
    for pct in (100, 200, 400):
        s = pct // 100
        w, hh, rows = read_png(binascii.a2b_base64(await h["screen/snapshot"]({"format": "png", "scale": pct})))
        assert (w, hh) == (128 * s, 64 * s)
        for y in range(0, 64):
            for x in range(128):
                want = display.fb.pixel(x, y)
                assert lit(rows, x * s, y * s) == want and lit(rows, x * s + s - 1, y * s + s - 1) == want, (pct, x, y)
    rows = read_png(png.encode(display.buf, 128, 64))[2]
    on = sum(lit(rows, x, y) for y in range(64) for x in range(128))
    assert 0 < on < 128 * 64 // 2   # text on a dark panel, a lit title bar
    # Noise, a lit and a dark screen decode to what they are, within max_size.
    for fill in (bytes(range(256)) * 4, b"\xff" * 1024, bytes(1024)):
        data = png.encode(fill, 128, 64, 4)
        assert len(data) <= png.max_size(128, 64, 4), len(data)
        rows = read_png(data)[2]
        assert [lit(rows, x * 4, y * 4 + 3) for y in range(64) for x in range(0, 128, 7)] == \
            [(fill[(y >> 3) * 128 + x] >> (y & 7)) & 1 for y in range(64) for x in range(0, 128, 7)]


async def test_a_pin_typed_over_the_channel_opens_the_door_and_shows_as_stars():
    board, store, reader, display, h = terminal()
    store.put({"id": "cy", "pin": PIN})
    for c in PIN[:3]:
        assert await h["key/down"]({"code": c}) is None
        assert await h["key/up"]({"code": c}) is None
    display.refresh()
    assert text_at(display, "PIN ***", 55)
    assert opened(board) == 0
    await h["key/down"]({"code": PIN[3]})
    await h["key/down"]({"code": "ENTER"})
    assert opened(board) == 1
    assert decisions(board) == [("unlocked", "cy", None)]
    display.refresh()
    assert text_at(display, "card or PIN", 55) and text_at(display, "open pin cy", 44)
    # A wrong PIN: denied, and said so on the display.
    for c in "9999#":
        await h["key/down"]({"code": c})
    assert opened(board) == 1 and decisions(board) == [("access_denied", None, "unknown_pin")]
    display.refresh()
    assert text_at(display, "no: unknown_pin", 44)
    # `*` clears what was typed.
    await h["key/down"]({"code": "1"})
    await h["key/down"]({"code": "*"})
    assert reader.typed() == 0


async def test_hostile_bodies_are_refused_with_the_reason():
    board, store, reader, display, h = terminal()
    for body in ({"scale": 0}, {"scale": 50}, {"scale": 500}, {"scale": "100"}, {"scale": True},
                 {"scale": 10 ** 30}, {"scale": 100.0}, {"format": "jpeg"}, [], "png", 5):
        e = await araises(CommandError, h["screen/snapshot"](body))
        assert "scale" in str(e) or "PNG only" in str(e), (body, e)
    assert (await h["screen/snapshot"](None))   # the defaults: PNG at 100 %
    for body in ({"code": "A"}, {"code": "12"}, {"code": ""}, {"code": None}, {"code": 5}, {"code": "#" * 5000},
                 {}, None, [], "5"):
        e = await araises(CommandError, h["key/down"](body))
        assert "needs" in str(e) and len(str(e)) < 200, (body, e)
    assert reader.typed() == 0
    e = await araises(CommandError, h["key/down"]({"code": "1", "door": "back"}))
    assert "no reader at door 'back'" in str(e)
    for req in ("touch/down", "touch/move", "touch/up"):
        e = await araises(CommandError, h[req]({"finger": 1, "x": 10, "y": 10}))
        assert "no touch panel" in str(e) and "key/down" in str(e)


async def test_boards_without_a_display_or_keypad_say_so():
    h = {}
    screen.register(h, Device())
    e = await araises(CommandError, h["screen/snapshot"]({"format": "png", "scale": 100}))
    assert str(e) == "no display on this board"
    e = await araises(CommandError, h["touch/down"]({"finger": 1, "x": 1, "y": 1}))
    assert str(e) == "no display on this board"
    e = await araises(CommandError, h["key/down"]({"code": "1"}))
    assert "no keypad on this board" in str(e)
    board, store, reader = door_with_reader("card")
    h = {}
    screen.register(h, Device(None, [reader]))
    e = await araises(CommandError, h["key/down"]({"code": "1"}))
    assert "takes cards only" in str(e)


def test_a_display_larger_than_an_ssd1306_is_refused_at_start():
    from agent.errors import ConfigError

    from support import raises
    for field, value in (("width", 256), ("height", 128), ("height", 0), ("width", True)):
        e = raises(ConfigError, config.peripheral, "display", {field: value}, "board.json", "peripherals[3].")
        assert "peripherals[3].%s" % field in str(e), e
    assert config.peripheral("display", {})["width"] == 128
