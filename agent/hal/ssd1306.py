# An SSD1306 OLED panel (128x64 or 128x32) on I2C: the datasheet's command
# set as bytes written through any object with writeto(addr, buf) -
# machine.I2C on an ESP32, agent/hal/gpiozero_io.py's smbus2 adapter on a
# Pi. No runtime imports, so both runtimes run the same bytes.
#
# Every I2C transaction starts with a control byte: 0x00 says the rest are
# commands, 0x40 that the rest is GDDRAM data. The panel is set to
# horizontal addressing, so one column+page window and the frame buffer's
# bytes in order fill it: the buffer's MONO_VLSB layout (a byte is a column
# of 8 pixels, bit 0 at the top, pages of 8 rows) is the GDDRAM's own.
#
# A frame goes out in transactions of CHUNK data bytes + the control byte
# (an ESP32's I2C FIFO holds 32 bytes; a Pi's smbus2 message stays small),
# copied into one buffer made at start: on MicroPython a show allocates
# nothing, so a redraw leaves no garbage to fragment a board's heap.
CHUNK = 32
ADDRESSES = (0x3C, 0x3D)   # SA0 low / high: the only two an SSD1306 answers at


def _init_sequence(height, contrast):
    # The datasheet's application note order (SSD1306 rev 1.1, section 8.9 /
    # the "software initialization" flow), display off while it is set up.
    return bytes((
        0x00,                    # control byte: commands follow
        0xAE,                    # display off
        0xD5, 0x80,              # clock divide ratio / oscillator frequency (reset value)
        0xA8, height - 1,        # multiplex ratio: the panel's rows
        0xD3, 0x00,              # display offset 0
        0x40,                    # start line 0
        0x8D, 0x14,              # charge pump on (the panel has no external VCC)
        0x20, 0x00,              # memory addressing: horizontal
        0xA1,                    # segment remap: column 127 is SEG0 (the usual module mounting)
        0xC8,                    # COM scan from COM[N-1] down
        0xDA, 0x12 if height == 64 else 0x02,   # COM pins: alternative for 64 rows, sequential for 32
        0x81, contrast,          # contrast
        0xD9, 0xF1,              # pre-charge: phase 1 1 clock, phase 2 15 (internal charge pump)
        0xDB, 0x40,              # VCOMH deselect level
        0xA4,                    # resume: show the RAM
        0xA6,                    # normal (not inverted)
        0xAF,                    # display on
    ))


class Ssd1306:
    __slots__ = ("i2c", "address", "width", "height", "pages", "contrast_", "_window", "_chunk", "_frame", "_at")

    def __init__(self, i2c, width=128, height=64, address=0x3C, contrast=0x7F):
        """`i2c`: anything with writeto(addr, buf) that raises OSError
        when nothing acknowledges. Nothing is written until init()."""
        if width != 128 or height not in (32, 64):
            raise ValueError("an SSD1306 panel is 128x64 or 128x32, not %dx%d" % (width, height))
        if address not in ADDRESSES:
            raise ValueError("an SSD1306 answers at 0x3C or 0x3D, not 0x%02X" % address)
        self.i2c = i2c
        self.address = address
        self.width = width
        self.height = height
        self.pages = height // 8
        self.contrast_ = contrast
        # The column and page windows, re-sent before every frame: whatever
        # a glitch did to the RAM pointer, a frame starts at the top left.
        self._window = bytes((0x00, 0x21, 0, width - 1, 0x22, 0, self.pages - 1))
        self._chunk = bytearray(CHUNK + 1)
        self._chunk[0] = 0x40
        self._frame = None   # the frame begin() started
        self._at = 0         # its next byte to write (-1: the window first)

    def where(self):
        return "SSD1306 at I2C address 0x%02X on %s" % (self.address, self.i2c)

    def _write(self, buf):
        try:
            self.i2c.writeto(self.address, buf)
        except OSError as e:
            # No ACK (errno 19 ENODEV / 116 ETIMEDOUT on an ESP32, 121
            # EREMOTEIO on a Pi): no panel there, or not at this address.
            raise OSError("no answer from the %s (%s): check its wiring, power and address "
                          "(0x3C or 0x3D, set by the module's SA0 jumper)" % (self.where(), e))

    def init(self):
        """Set the panel up and turn it on (its RAM holds noise until a show)."""
        self._write(_init_sequence(self.height, self.contrast_))

    def show(self, buf):
        """Write a whole MONO_VLSB frame (width * pages bytes) to the panel."""
        self.begin(buf)
        while self.step():
            pass

    def begin(self, buf):
        """Start writing a frame that step() writes one I2C write at a time:
        a frame is ~25 ms on the wire at 400 kHz and ~100 ms at the Pi's
        default 100 kHz, each write blocking, so a caller that lets the
        event loop run between steps holds it ~3 ms at a time at most. No
        allocation (a generator would be one per frame)."""
        size = self.width * self.pages
        if len(buf) != size:
            raise ValueError("a %dx%d frame is %d bytes, got %d" % (self.width, self.height, size, len(buf)))
        self._frame = buf
        self._at = -1

    def step(self):
        """One write of the frame begun -> whether more remain."""
        buf = self._frame
        if buf is None:
            return False
        i = self._at
        if i < 0:
            self._write(self._window)
            self._at = 0
            return True
        chunk = self._chunk
        # Byte by byte: a slice or memoryview would be a new object per
        # chunk (32 a frame). The loop is 0.3 ms a frame on the unix port,
        # a few ms on an ESP32.
        for j in range(1, CHUNK + 1):
            chunk[j] = buf[i]
            i += 1
        self._at = i
        if i >= len(buf):
            self._frame = None
        self._write(chunk)
        return self._frame is not None

    def _command(self, *cmd):
        self._write(bytes((0x00,) + cmd))

    def power(self, on):
        """Panel on or off (off: the RAM is kept, the charge pump stays up)."""
        self._command(0xAF if on else 0xAE)

    def contrast(self, value):
        if not 0 <= value <= 255:
            raise ValueError("contrast is 0 to 255, got %r" % (value,))
        self._command(0x81, value)
        self.contrast_ = value
