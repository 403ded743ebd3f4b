# Wiegand, sans-IO: bits in, frames out, frames to cards and keys.
#
# Port gathers the bits a hal sees on D0/D1 (on an ESP32 inside a hard IRQ
# handler, which must not allocate) and splits them into frames by the gap
# between bits, at the moment a bit arrives: a reader task that is late
# (a flash write, a user lookup) then never glues two frames into noise.
# decode() turns one frame into a card number or a keypad key.
#
# Formats (bit 1 is the first on the wire):
#   26 bits (H10301): bit 1 even parity over bits 1-13, bit 26 odd over
#     14-26; facility 8 + card 16 -> number = facility << 16 | card.
#   34 bits: the same with 17/17 halves and 32 data bits.
#   37 bits (H10304): bit 1 even over bits 1-19, bit 37 odd over bits
#     19-37 (bit 19 counts in both, as HID's layout says); facility 16 +
#     card 19 -> the 35 data bits.
#   4 bits: a key 0-11. 8 bits: the key in the low nibble, its complement
#     in the high nibble (a mismatch is noise).
# Anything else (an odd count from a missing ground, a burst of interference)
# is noise and never becomes a card.

MAX_BITS = 64     # bits a port keeps of one frame; it counts on beyond
# Counts stop here: the largest small int of a 32-bit MicroPython. A line
# that never rests (a floating input picking up hum) would otherwise grow
# `count` into a long int, an allocation inside the interrupt.
SATURATE = 0x3FFFFFFF
CLEAR = 10        # the `*` key
ENTER = 11        # the `#` key
KEYS = 12
# nbits: (bits summed for the even parity from the start, bits summed for
# the odd parity up to the end), each window holding its own parity bit.
CARDS = {26: (13, 13), 34: (17, 17), 37: (19, 19)}
_SIZE = MAX_BITS // 8


def _odd(x):
    """True when x has an odd number of bits set."""
    odd = False
    while x:
        x &= x - 1
        odd = not odd
    return odd


def decode(value, nbits):
    """One frame -> ("card", number, nbits) | ("key", k) |
    ("bad_parity", nbits) | ("noise", nbits). `value` holds the frame's
    first bit as its most significant one."""
    if nbits == 4:
        return ("key", value) if value < KEYS else ("noise", nbits)
    if nbits == 8:
        key = value & 0xF
        if value >> 4 == key ^ 0xF and key < KEYS:
            return ("key", key)
        return ("noise", nbits)
    halves = CARDS.get(nbits)
    if halves is None or value >> nbits:
        return ("noise", nbits)
    even, odd = halves
    if _odd(value >> (nbits - even)) or not _odd(value & ((1 << odd) - 1)):
        return ("bad_parity", nbits)
    return ("card", (value >> 1) & ((1 << (nbits - 2)) - 1), nbits)


def _zero(buf):
    i = 0
    while i < _SIZE:
        buf[i] = 0
        i += 1


def _copy(src, dst):
    i = 0
    while i < _SIZE:
        dst[i] = src[i]
        i += 1


class Port:
    """The bits of one Wiegand reader, split into frames.

    bit() is the whole of an edge handler's work and allocates nothing
    (small ints, preallocated buffers, while loops: no range, no tuple):
    it may run in a hard IRQ. take() gives the oldest ended frame. A hal
    whose bits arrive on another thread or an interrupt guards both calls
    (a lock; machine.disable_irq around grab() only, then frame())."""

    __slots__ = ("gap_ms", "ticks_diff", "count", "last_ms", "lost", "_bits", "_held", "_held_n", "_out")

    def __init__(self, gap_ms, ticks_diff):
        self.gap_ms = gap_ms
        self.ticks_diff = ticks_diff  # the hal's: MicroPython's ticks wrap
        self.count = 0                # bits of the frame being gathered
        self.last_ms = 0              # when its last bit came
        self.lost = 0                 # ended frames overwritten before take()
        self._bits = bytearray(_SIZE)
        self._held = bytearray(_SIZE)  # one ended frame waiting for take()
        self._held_n = 0
        self._out = bytearray(_SIZE)

    def bit(self, one, now_ms):
        n = self.count
        if n and self.ticks_diff(now_ms, self.last_ms) >= self.gap_ms:
            if self._held_n and self.lost < SATURATE:
                self.lost += 1
            self._bits, self._held = self._held, self._bits
            self._held_n = n
            _zero(self._bits)
            n = 0
        if one and n < MAX_BITS:
            self._bits[n >> 3] |= 0x80 >> (n & 7)
        if n < SATURATE:
            self.count = n + 1
        self.last_ms = now_ms

    def grab(self, now_ms):
        """Move the oldest ended frame out (allocates nothing) -> its bit
        count, 0 when no frame has ended by now_ms."""
        n = self._held_n
        if n:
            _copy(self._held, self._out)
            _zero(self._held)
            self._held_n = 0
            return n
        n = self.count
        if n and self.ticks_diff(now_ms, self.last_ms) >= self.gap_ms:
            _copy(self._bits, self._out)
            _zero(self._bits)
            self.count = 0
            return n
        return 0

    def frame(self, n):
        """(value, nbits) of what grab() moved out: value holds the first
        MAX_BITS bits, nbits counts them all."""
        kept = n if n < MAX_BITS else MAX_BITS
        return int.from_bytes(self._out, "big") >> (MAX_BITS - kept), n

    def take(self, now_ms):
        """The oldest frame that has ended by now_ms as (value, nbits), or None."""
        n = self.grab(now_ms)
        return self.frame(n) if n else None
