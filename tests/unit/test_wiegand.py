# Wiegand frames on both runtimes: every card size decoded from vectors
# built here from the formats' layouts (not from the codec), parity and
# noise refused, keypad frames, and the port splitting bits into frames
# by the gap between them.
from agent import hal
from agent.codecs.wiegand import MAX_BITS, SATURATE, Port, decode

GAP = 100


def frame(text):
    """A frame written as the wire sends it, first bit first."""
    return int(text, 2), len(text)


def card_frame(number, nbits):
    """A card frame laid out by its format: data bits, then a leading even
    parity bit over the first window and a trailing odd one over the last
    (H10301 13/13, 34-bit 17/17, H10304 19/19 sharing bit 19)."""
    windows = {26: 12, 34: 16, 37: 18}
    data = ""
    for i in range(nbits - 2):
        data = ("1" if number >> i & 1 else "0") + data
    assert int(data, 2) == number, "the number does not fit the format"
    w = windows[nbits]
    even = data[:w].count("1") % 2
    odd = 1 - data[-w:].count("1") % 2
    return frame(str(even) + data + str(odd))


def flip(value_nbits, bit):
    """The frame with its bit number `bit` (1 = first on the wire) flipped."""
    value, nbits = value_nbits
    return value ^ (1 << (nbits - bit)), nbits


def test_a_26_bit_card_built_bit_by_bit():
    # Facility 123 = 01111011, card 4567 = 0001000111010111. The first 12
    # data bits 011110110001 hold seven ones: even parity bit 1. The last 12,
    # 000111010111, hold seven: odd parity bit 0.
    wire = "1" + "01111011" + "0001000111010111" + "0"
    assert decode(*frame(wire)) == ("card", 123 << 16 | 4567, 26)
    assert 123 << 16 | 4567 == 8065495
    assert card_frame(8065495, 26) == frame(wire)


def test_each_card_size_decodes_to_its_number():
    for number, nbits in ((0, 26), (0xFFFFFF, 26), (255 << 16 | 1, 26),
                          (0xDEADBEEF, 34), (1, 34), (0xFFFFFFFF, 34),
                          (2652 << 19 | 123456, 37), (0x7FFFFFFFF, 37), (0, 37)):
        assert decode(*card_frame(number, nbits)) == ("card", number, nbits), (number, nbits)


def test_the_37_bit_parity_windows_share_bit_19():
    # H10304: bit 1 is even parity over bits 1-19, bit 37 odd over 19-37.
    good = card_frame(2652 << 19 | 123456, 37)
    for bit in (2, 18, 19, 20, 36):
        assert decode(*flip(good, bit)) == ("bad_parity", 37), bit
    # Bit 19 is in both windows: flipping it and both parity bits is whole again.
    assert decode(*flip(flip(flip(good, 19), 1), 37))[0] == "card"


def test_a_flipped_bit_is_bad_parity_never_another_card():
    for number, nbits in ((123 << 16 | 4567, 26), (0xDEADBEEF, 34), (2652 << 19 | 123456, 37)):
        good = card_frame(number, nbits)
        for bit in range(1, nbits + 1):
            assert decode(*flip(good, bit)) == ("bad_parity", nbits), (nbits, bit)


def test_other_bit_counts_are_noise():
    for nbits in (1, 2, 3, 5, 7, 9, 24, 25, 27, 33, 35, 36, 38, 63, 64, 200):
        assert decode(0, nbits) == ("noise", nbits)
        assert decode((1 << min(nbits, MAX_BITS)) - 1, nbits) == ("noise", nbits)


def test_4_bit_keys():
    for key in range(12):
        text = ""
        for i in range(4):
            text = ("1" if key >> i & 1 else "0") + text
        assert decode(*frame(text)) == ("key", key)
    assert decode(*frame("1010")) == ("key", 10)   # *
    assert decode(*frame("1011")) == ("key", 11)   # #
    for text in ("1100", "1101", "1110", "1111"):
        assert decode(*frame(text)) == ("noise", 4)


def test_8_bit_keys_carry_their_complement():
    assert decode(*frame("10100101")) == ("key", 5)
    assert decode(*frame("01011010")) == ("key", 10)
    assert decode(*frame("01001011")) == ("key", 11)
    assert decode(*frame("00000101")) == ("noise", 8)    # high nibble not the complement
    assert decode(*frame("10110101")) == ("noise", 8)    # one bit off
    assert decode(*frame("00111100")) == ("noise", 8)    # key 12 does not exist


def feed(port, text, now):
    for c in text:
        port.bit(c == "1", now)


def test_the_port_gives_a_frame_once_the_gap_has_passed():
    port = Port(GAP, hal.ticks_diff)
    feed(port, "0101", 1000)
    assert port.count == 4 and port.last_ms == 1000
    assert port.take(1000 + GAP - 1) is None
    assert port.take(1000 + GAP) == frame("0101")
    assert port.count == 0
    assert port.take(5000) is None


def test_two_bursts_further_apart_than_the_gap_are_two_frames():
    port = Port(GAP, hal.ticks_diff)
    wire = "1" + "01111011" + "0001000111010111" + "0"
    feed(port, wire[:10], 1000)
    feed(port, wire[10:], 1000 + GAP - 1)       # within the gap: one frame
    feed(port, "10100101", 1000 + 3 * GAP)       # a key, a gap later
    assert port.take(1000 + 3 * GAP) == frame(wire)
    assert port.take(1000 + 3 * GAP) is None    # the key's frame has not ended yet
    assert port.take(1000 + 4 * GAP) == frame("10100101")


def test_a_frame_nobody_took_is_counted_as_lost_and_the_newer_ones_kept():
    port = Port(GAP, hal.ticks_diff)
    feed(port, "0001", 0)
    feed(port, "0010", 2 * GAP)
    feed(port, "0011", 4 * GAP)
    assert port.lost == 1
    assert port.take(4 * GAP) == frame("0010")
    assert port.take(5 * GAP) == frame("0011")
    assert port.take(6 * GAP) is None


def test_the_port_keeps_64_bits_and_counts_on():
    port = Port(GAP, hal.ticks_diff)
    feed(port, "1" * 64 + "0" * 36, 0)
    value, nbits = port.take(GAP)
    assert (value, nbits) == ((1 << 64) - 1, 100)
    assert decode(value, nbits) == ("noise", 100)
    # The buffers start clean for the next frame.
    feed(port, "0" * 26, 2 * GAP)
    assert port.take(3 * GAP) == (0, 26)


def test_a_line_that_never_rests_saturates_the_count():
    port = Port(GAP, hal.ticks_diff)
    port.count = SATURATE - 1          # as after days of edges with no rest
    port.bit(1, 0)
    port.bit(1, 0)
    assert port.count == SATURATE
    assert decode(*port.take(GAP)) == ("noise", SATURATE)
