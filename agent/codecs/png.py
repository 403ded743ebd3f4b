# PNG, sans-IO: a 1-bit MONO_VLSB frame buffer (an SSD1306's layout: each
# byte a column of 8 pixels, bit 0 on top) -> a 1-bit grayscale PNG, lit
# pixels white, each pixel drawn as a scale x scale square.
#
# The deflate stream is written here, not by zlib or MicroPython's
# `deflate` (the unix port's only decompresses): one fixed-Huffman block
# of literals and runs (distance 1), fed one row at a time. A screen is
# mostly dark, and a scaled row repeats the one above it (PNG's "Up"
# filter makes it zeros), so runs are nearly all of it: a 512x256 image
# (400 %) takes a few hundred bytes, and nothing larger than one row and
# the output is ever allocated - the agent's heap need not hold 17 KB in
# one piece. Both runtimes write the same bytes.
import binascii
import struct

SIGNATURE = b"\x89PNG\r\n\x1a\n"
NONE, UP = 0, 2        # PNG row filters
MAX_RUN = 258          # deflate's longest match
# Length codes 257..285: the shortest length each stands for, and its extra bits.
LBASE = (3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195,
         227, 258)
LEXTRA = (0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0)


def _chunk(kind, data):
    crc = binascii.crc32(data, binascii.crc32(kind)) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


class Deflater:
    """zlib stream of one fixed-Huffman block: literals, and runs of the
    previous byte as matches at distance 1."""
    __slots__ = ("out", "acc", "bits", "prev", "a", "b")

    def __init__(self):
        self.out = bytearray(b"\x78\x01")
        self.acc = 0
        self.bits = 0
        self.prev = -1       # the last byte written (a run repeats it)
        self.a, self.b = 1, 0   # Adler-32
        self._put(0b011, 3)  # BFINAL, BTYPE 01 (fixed Huffman), LSB first

    def _put(self, value, n):
        self.acc |= value << self.bits
        self.bits += n
        while self.bits >= 8:
            self.out.append(self.acc & 0xFF)
            self.acc >>= 8
            self.bits -= 8

    def _code(self, code, n):
        # Huffman codes go most significant bit first.
        rev = 0
        for _ in range(n):
            rev = rev << 1 | code & 1
            code >>= 1
        self._put(rev, n)

    def _symbol(self, s):
        if s < 144:
            self._code(0x30 + s, 8)
        elif s < 256:
            self._code(0x190 + s - 144, 9)
        elif s < 280:
            self._code(s - 256, 7)
        else:
            self._code(0xC0 + s - 280, 8)

    def _run(self, n):
        i = len(LBASE) - 1
        while LBASE[i] > n:
            i -= 1
        self._symbol(257 + i)
        if LEXTRA[i]:
            self._put(n - LBASE[i], LEXTRA[i])
        self._code(0, 5)   # distance code 0: distance 1

    def feed(self, data):
        a, b = self.a, self.b
        for v in data:
            a += v
            b += a
        self.a, self.b = a % 65521, b % 65521
        i, n = 0, len(data)
        while i < n:
            v = data[i]
            j = i
            while j < n and data[j] == self.prev and j - i < MAX_RUN:
                j += 1
            if j - i >= 3:
                self._run(j - i)
                i = j
                continue
            self._symbol(v)
            self.prev = v
            i += 1

    def finish(self):
        self._symbol(256)
        if self.bits:
            self.out.append(self.acc & 0xFF)
        self.out += struct.pack(">I", self.b << 16 | self.a)
        return bytes(self.out)


def max_size(width, height, scale):
    """Bytes of the largest PNG encode() makes (a screen of noise): a new
    row's bytes as 9-bit literals, a repeated row a few bytes of runs."""
    row = 1 + (width * scale + 7) // 8
    return 128 + height * (row * 9 // 8 + 2 + (scale - 1) * 8)


def encode(buf, width, height, scale=1):
    """The PNG's bytes. `buf`: width x ceil(height/8) bytes, MONO_VLSB."""
    if len(buf) < width * ((height + 7) // 8):
        raise ValueError("frame buffer smaller than %dx%d" % (width, height))
    z = Deflater()
    row_len = 1 + (width * scale + 7) // 8
    row = bytearray(row_len)
    same = bytearray(row_len)   # a row equal to the one above, "Up"-filtered: zeros
    same[0] = UP
    for y in range(height):
        line = (y >> 3) * width
        bit = 1 << (y & 7)
        for i in range(row_len):
            row[i] = 0
        px = 0
        for x in range(width):
            if buf[line + x] & bit:
                for _ in range(scale):
                    row[1 + (px >> 3)] |= 0x80 >> (px & 7)
                    px += 1
            else:
                px += scale
        z.feed(row)
        for _ in range(scale - 1):
            z.feed(same)
    head = struct.pack(">IIBBBBB", width * scale, height * scale, 1, 0, 0, 0, 0)
    return SIGNATURE + _chunk(b"IHDR", head) + _chunk(b"IDAT", z.finish()) + _chunk(b"IEND", b"")
