# The Wiegand reader on both runtimes: frames become credentials for the
# access controller, keys become a PIN (timeout, `*` clears, `#` enters),
# card+PIN sequencing, and whatever the wires send, bounded state and
# counted noise. Frames are fed with the time they were taken, so the PIN
# timeout is tested on a clock the test holds.
import asyncio

from agent import config, hal, log
from agent.codecs.wiegand import Port
from agent.peripherals.reader import MAX_PIN, Reader
from agent.tasks import cancel_and_wait

from support import raises

STAR, HASH = 10, 11


class Access:
    """The access controller's present() as the reader sees it; says yes."""

    def __init__(self, fail=False):
        self.asked = []
        self.fail = fail

    async def present(self, door_name, source, card=None, pin=None):
        self.asked.append((door_name, source, card, pin))
        if self.fail:
            raise OSError("user store unreadable")
        return True, "u1", None


class Pins:
    def __init__(self):
        self.wired = []

    def wiegand(self, d0_pin, d1_pin, frame_gap_ms=100):
        self.wired.append((d0_pin, d1_pin, frame_gap_ms))
        return Port(frame_gap_ms, hal.ticks_diff)


def reader(mode, access=None, **fields):
    cfg = {"d0_pin": 4, "d1_pin": 5, "door": "front", "mode": mode}
    cfg.update(fields)
    return Reader(access or Access(), Pins(), config.peripheral("wiegand", cfg))


def card26(number):
    data = number & 0xFFFFFF
    even = bin(data >> 12).count("1") % 2
    odd = 1 - bin(data & 0xFFF).count("1") % 2
    return (even << 25 | data << 1 | odd), 26


def key4(k):
    return k, 4


def key8(k):
    return (k ^ 0xF) << 4 | k, 8


async def show(r, frame, now):
    await r.frame(frame[0], frame[1], now)


async def keys(r, text, now, step=500):
    for c in text:
        await show(r, key4("0123456789*#".index(c)), now)
        now += step
    return now


def counted(name):
    return log.counters.get(name, 0)


async def test_card_mode_presents_each_card_and_ignores_keys():
    r = reader("card")
    before = counted("wiegand_keys_ignored")
    await show(r, card26(123 << 16 | 4567), 0)
    await keys(r, "12#", 100)
    assert r.access.asked == [("front", "card", 8065495, None)]
    assert counted("wiegand_keys_ignored") == before + 3


async def test_pin_mode_enters_a_pin_with_hash():
    r = reader("pin")
    await keys(r, "4711#", 0)
    await show(r, key8(1), 5000)      # 8-bit keypads too
    await show(r, key8(9), 5100)
    await show(r, key8(HASH), 5200)
    assert r.access.asked == [("front", "pin", None, "4711"), ("front", "pin", None, "19")]


async def test_pin_mode_ignores_cards():
    r = reader("pin")
    before = counted("wiegand_cards_ignored")
    await show(r, card26(42), 0)
    assert r.access.asked == []
    assert counted("wiegand_cards_ignored") == before + 1


async def test_star_clears_the_digits_typed():
    r = reader("pin")
    await keys(r, "99*1234#", 0)
    assert r.access.asked == [("front", "pin", None, "1234")]


async def test_a_lone_hash_presents_nothing():
    r = reader("pin")
    await keys(r, "#*#", 0)
    assert r.access.asked == []


async def test_a_half_typed_pin_times_out():
    r = reader("pin", pin_timeout_s=10)
    before = counted("wiegand_pin_timeouts")
    await keys(r, "12", 0, step=1000)            # last key at 1000 ms
    await keys(r, "34#", 1000 + 10000)           # the timeout passed: "12" is gone
    assert r.access.asked == [("front", "pin", None, "34")]
    assert counted("wiegand_pin_timeouts") == before + 1


async def test_the_timeout_counts_from_the_last_key():
    r = reader("pin", pin_timeout_s=10)
    await keys(r, "1234", 0, step=9000)          # 27 s in all, never 10 s between keys
    await keys(r, "#", 27000 + 9999)
    assert r.access.asked == [("front", "pin", None, "1234")]


async def test_expire_drops_the_entry_without_a_frame():
    r = reader("pin", pin_timeout_s=1)
    await keys(r, "12", 0, step=10)
    r.expire(10 + 999)
    await keys(r, "#", 10 + 999)
    assert r.access.asked == [("front", "pin", None, "12")]
    await keys(r, "56", 5000, step=10)
    r.expire(5010 + 1000)
    await keys(r, "#", 5010 + 1000)
    assert len(r.access.asked) == 1


async def test_the_pin_buffer_holds_at_most_8_digits():
    r = reader("pin")
    before = counted("wiegand_pin_overflow")
    await keys(r, "123456789012#", 0, step=10)
    assert r.access.asked == [("front", "pin", None, "12345678")]
    assert MAX_PIN == 8
    assert counted("wiegand_pin_overflow") == before + 4


async def test_card_pin_presents_the_card_with_its_pin():
    r = reader("card_pin")
    await show(r, card26(1001), 0)
    await keys(r, "2468#", 500)
    assert r.access.asked == [("front", "card_pin", 1001, "2468")]


async def test_card_pin_keys_before_a_card_are_ignored():
    r = reader("card_pin")
    before = counted("wiegand_keys_ignored")
    await keys(r, "12#", 0)
    await show(r, card26(1001), 2000)
    await keys(r, "99#", 2500)
    assert r.access.asked == [("front", "card_pin", 1001, "99")]
    assert counted("wiegand_keys_ignored") == before + 3


async def test_card_pin_a_second_card_restarts_the_entry():
    r = reader("card_pin")
    await show(r, card26(1001), 0)
    await keys(r, "11", 100)
    await show(r, card26(2002), 1200)
    await keys(r, "22#", 1300)
    assert r.access.asked == [("front", "card_pin", 2002, "22")]


async def test_card_pin_the_card_waits_only_pin_timeout_s():
    r = reader("card_pin", pin_timeout_s=5)
    await show(r, card26(1001), 0)
    await keys(r, "1234#", 5000)
    assert r.access.asked == []
    await show(r, card26(1001), 6000)
    await keys(r, "1234#", 6000 + 4999)
    assert r.access.asked == [("front", "card_pin", 1001, "1234")]


async def test_card_pin_star_clears_the_digits_then_the_card():
    r = reader("card_pin")
    await show(r, card26(1001), 0)
    await keys(r, "9*1234#", 100)                 # one `*`: the card still waits
    await show(r, card26(1001), 5000)
    await keys(r, "**1234#", 5100)                # a second `*` gave the card back
    assert r.access.asked == [("front", "card_pin", 1001, "1234")]


async def test_card_or_pin_takes_either():
    r = reader("card_or_pin")
    await keys(r, "55", 0)
    await show(r, card26(7), 1000)                # a card drops a half-typed PIN
    await keys(r, "1357#", 2000)
    assert r.access.asked == [("front", "card", 7, None), ("front", "pin", None, "1357")]


async def test_bad_parity_and_noise_are_counted_and_never_presented():
    r = reader("card_or_pin")
    parity, noise = counted("wiegand_bad_parity"), counted("wiegand_noise")
    value, nbits = card26(123 << 16 | 4567)
    await show(r, (value ^ 1 << 12, nbits), 0)    # one bit flipped on the wire
    await show(r, (value >> 1, 25), 100)           # a bit missing
    await show(r, (value << 1, 27), 200)           # a bit too many
    await show(r, (0x55, 8), 300)                  # an 8-bit key without its complement
    assert r.access.asked == []
    assert counted("wiegand_bad_parity") == parity + 1
    assert counted("wiegand_noise") == noise + 3


async def test_a_failed_decision_is_counted_and_the_reader_goes_on():
    access = Access(fail=True)
    r = reader("card", access)
    before = counted("reader_errors")
    await show(r, card26(5), 0)
    await show(r, card26(6), 1000)
    assert [a[2] for a in access.asked] == [5, 6]
    assert counted("reader_errors") == before + 2


async def test_run_takes_frames_from_the_port_as_they_end():
    r = reader("card", frame_gap_ms=25)
    task = asyncio.create_task(r.run())
    try:
        value, nbits = card26(123 << 16 | 4567)
        now = hal.ticks_ms()
        for i in range(nbits):
            r.port.bit(value >> (nbits - 1 - i) & 1, now)
        for _ in range(200):                      # bounded: 2 s at most
            if r.access.asked:
                break
            await asyncio.sleep(0.01)
        assert r.access.asked == [("front", "card", 8065495, None)]
    finally:
        await cancel_and_wait(task)


def test_the_board_file_fields():
    pins = Pins()
    Reader(Access(), pins, config.peripheral("wiegand", {"d0_pin": 12, "d1_pin": 13, "frame_gap_ms": 40}))
    assert pins.wired == [(12, 13, 40)]
    cfg = config.peripheral("wiegand", {"d0_pin": 1, "d1_pin": 2})
    assert (cfg["name"], cfg["door"], cfg["mode"], cfg["pin_timeout_s"], cfg["frame_gap_ms"]) == \
        ("wiegand", "door", "card", 10, 100)
    e = raises(config.ConfigError, reader, "pin_only")   # named at start, as the board file's field
    assert "mode" in str(e) and "must be one of card, card_pin, pin, card_or_pin" in str(e)
    e = raises(ValueError, lambda: reader("card", d0_pin=7, d1_pin=7))
    assert "two pins" in str(e)
    for field, bad in (("frame_gap_ms", 10), ("frame_gap_ms", 501), ("pin_timeout_s", 0), ("d0_pin", 64)):
        fields = {"d0_pin": 1, "d1_pin": 2}
        fields[field] = bad
        e = raises(config.ConfigError, config.peripheral, "wiegand", fields)
        assert field in str(e)
