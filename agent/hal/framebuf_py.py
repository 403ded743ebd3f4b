# A 1-bit MONO_VLSB frame buffer for CPython with the subset of
# MicroPython's framebuf.FrameBuffer the display uses (fill, pixel, hline,
# vline, rect, fill_rect, text): the same bytes come out of both runtimes,
# so a screenshot taken on a Pi matches one taken on an ESP32. Each byte is
# a column of 8 pixels (bit 0 at the top), as an SSD1306 takes them.
import binascii

# framebuf's own 8x8 font (MicroPython's font_petme128_8x8, characters 32
# to 127, one byte per column), read out of the unix port's framebuf: text
# drawn here is pixel for pixel what framebuf draws.
FONT = binascii.unhexlify(
    "00000000000000000000004f4f0000000007070000070700147f7f14147f7f1400242e6b6b3a1200006333180c666300"
    "00327f4d4d777250000000040603010000001c3e63410000000041633e1c0000082a3e1c1c3e2a080008083e3e080800"
    "000080e0600000000008080808080800000000606000000000406030180c0602003e7f49457f3e000040447f7f404000"
    "00627351494f460000226349497f360000181814167f7f1000276745457d3900003e7f49497b3200000303797d070300"
    "00367f49497f360000266f49497f3e000000002424000000000080e46400000000081c36634141000014141414141400"
    "00414163361c080000020351590f0600003e7f414d4f2e00007c7e0b0b7e7c00007f7f49497f3600003e7f4141632200"
    "007f7f41633e1c00007f7f4949414100007f7f0909010100003e7f41497b3a00007f7f08087f7f000000417f7f410000"
    "002060417f3f0100007f7f1c36634100007f7f4040404000007f7f060c067f7f007f7f0e1c7f7f00003e7f41417f3e00"
    "007f7f09090f0600001e3f21617f5e00007f7f19396f460000266f49497b32000001017f7f010100003f7f40407f3f00"
    "001f3f60603f1f00007f7f3018307f7f0063771c1c77630000070f78780f0700006171594d47430000007f7f41410000"
    "0002060c18306040000041417f7f000000080c06060c0800c0c0c0c0c0c0c0c0000001030604000000207454547c7800"
    "007f7f44447c380000387c44446c280000387c44447f7f0000387c54545c580000087e7f090302000098bca4a4fc7c00"
    "007f7f04047c78000000007d7d0000000040c08080fd7d00007f7f30386c44000000417f7f400000007c7c1830187c7c"
    "007c7c04047c780000387c44447c380000fcfc24243c180000183c2424fcfc00007c7c04040c080000485c5454742000"
    "04043f7f44642000003c7c40407c3c00001c3c60603c1c00001c7c3018307c1c00446c38386c4400009cbca0a0fc7c00"
    "004464745c4c44000008083e77414100000000ffff000000004141773e0808000002030103020301aa55aa55aa55aa55"
)
UNKNOWN = 127   # framebuf draws any other character as this one (a checkerboard)


class FrameBuffer:
    __slots__ = ("buf", "width", "height")

    def __init__(self, buf, width, height):
        if len(buf) < width * ((height + 7) // 8):
            raise ValueError("buffer too small")
        self.buf = buf
        self.width = width
        self.height = height

    def fill(self, c):
        v = 0xFF if c else 0
        for i in range(self.width * ((self.height + 7) // 8)):
            self.buf[i] = v

    def pixel(self, x, y, c=None):
        if not (0 <= x < self.width and 0 <= y < self.height):
            return None
        i = (y >> 3) * self.width + x
        bit = 1 << (y & 7)
        if c is None:
            return 1 if self.buf[i] & bit else 0
        if c:
            self.buf[i] |= bit
        else:
            self.buf[i] &= ~bit & 0xFF
        return None

    def fill_rect(self, x, y, w, h, c):
        for yy in range(max(y, 0), min(y + h, self.height)):
            for xx in range(max(x, 0), min(x + w, self.width)):
                self.pixel(xx, yy, c)

    def hline(self, x, y, w, c):
        self.fill_rect(x, y, w, 1, c)

    def vline(self, x, y, h, c):
        self.fill_rect(x, y, 1, h, c)

    def rect(self, x, y, w, h, c, f=False):
        if f:
            self.fill_rect(x, y, w, h, c)
            return
        self.hline(x, y, w, c)
        self.hline(x, y + h - 1, w, c)
        self.vline(x, y, h, c)
        self.vline(x + w - 1, y, h, c)

    def text(self, s, x, y, c=1):
        for ch in s:
            code = ord(ch)
            if not 32 <= code <= 127:
                code = UNKNOWN
            base = (code - 32) * 8
            for col in range(8):
                bits = FONT[base + col]
                row = 0
                while bits:
                    if bits & 1:
                        self.pixel(x + col, y + row, c)
                    bits >>= 1
                    row += 1
            x += 8
