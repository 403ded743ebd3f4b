from agent.codecs.cbor import MAX_DEPTH, CBORError, decode, decode_from, encode

from support import raises


def h(s):
    return bytes.fromhex(s)


def is_nan(x):
    return x != x


# RFC 8949 Appendix A, where our encoder makes the same choice as the RFC.
BOTH_WAYS = [
    ("00", 0), ("01", 1), ("0a", 10), ("17", 23), ("1818", 24), ("1819", 25),
    ("1864", 100), ("1903e8", 1000), ("1a000f4240", 1000000),
    ("1b000000e8d4a51000", 1000000000000),
    ("1bffffffffffffffff", 18446744073709551615),
    ("3bffffffffffffffff", -18446744073709551616),
    ("20", -1), ("29", -10), ("3863", -100), ("3903e7", -1000),
    ("fb3ff199999999999a", 1.1), ("fb7e37e43c8800759c", 1.0e300),
    ("fbc010666666666666", -4.1),
    ("fb7ff0000000000000", float("inf")), ("fbfff0000000000000", float("-inf")),
    ("f4", False), ("f5", True), ("f6", None),
    ("40", b""), ("4401020304", b"\x01\x02\x03\x04"),
    ("60", ""), ("6161", "a"), ("6449455446", "IETF"), ("62225c", "\"\\"),
    ("62c3bc", "\u00fc"), ("63e6b0b4", "\u6c34"), ("64f0908591", "\U00010151"),
    ("80", []), ("83010203", [1, 2, 3]), ("8301820203820405", [1, [2, 3], [4, 5]]),
    ("98190102030405060708090a0b0c0d0e0f101112131415161718181819",
     list(range(1, 26))),
    ("a0", {}), ("a10102", {1: 2}), ("826161a161626163", ["a", {"b": "c"}]),
]

# Decode-only: float16/float32 inputs, undefined, tags, indefinite lengths,
# and multi-key maps (MicroPython dicts do not keep insertion order).
DECODE_ONLY = [
    ("f90000", 0.0), ("f93c00", 1.0), ("f93e00", 1.5), ("f97bff", 65504.0),
    ("f90001", 5.960464477539063e-8), ("f90400", 0.00006103515625),
    ("f9c400", -4.0), ("f97c00", float("inf")), ("f9fc00", float("-inf")),
    ("fa47c35000", 100000.0), ("fa7f7fffff", 3.4028234663852886e+38),
    ("fa7f800000", float("inf")), ("faff800000", float("-inf")),
    ("fb0000000000000000", 0.0), ("f7", None),
    ("a201020304", {1: 2, 3: 4}), ("a26161016162820203", {"a": 1, "b": [2, 3]}),
    ("a56161614161626142616361436164614461656145",
     {"a": "A", "b": "B", "c": "C", "d": "D", "e": "E"}),
    # tags: the content comes back as-is
    ("c074323031332d30332d32315432303a30343a30305a", "2013-03-21T20:04:00Z"),
    ("c11a514b67b0", 1363896240), ("c1fb41d452d9ec200000", 1363896240.5),
    ("d74401020304", b"\x01\x02\x03\x04"), ("d818456449455446", b"dIETF"),
    ("d82076687474703a2f2f7777772e6578616d706c652e636f6d", "http://www.example.com"),
    ("c249010000000000000000", b"\x01" + bytes(8)),
    # indefinite lengths
    ("5f42010243030405ff", b"\x01\x02\x03\x04\x05"), ("5fff", b""),
    ("7f657374726561646d696e67ff", "streaming"), ("7fff", ""),
    ("9fff", []), ("9f018202039f0405ffff", [1, [2, 3], [4, 5]]),
    ("9f01820203820405ff", [1, [2, 3], [4, 5]]),
    ("83018202039f0405ff", [1, [2, 3], [4, 5]]),
    ("83019f0203ff820405", [1, [2, 3], [4, 5]]),
    ("9f0102030405060708090a0b0c0d0e0f101112131415161718181819ff",
     list(range(1, 26))),
    ("bf61610161629f0203ffff", {"a": 1, "b": [2, 3]}),
    ("826161bf61626163ff", ["a", {"b": "c"}]),
    ("bf6346756ef563416d7421ff", {"Fun": True, "Amt": -2}),
    ("bfff", {}),
]

RECORD = [123, 1700000000.5, "event", "door_opened",
          {"door": "front", "n": -5, "b": b"\x00\x01"}]


def test_rfc_vectors_both_ways():
    for hx, value in BOTH_WAYS:
        assert encode(value) == h(hx), hx
        got = decode(h(hx))
        assert got == value and type(got) is type(value), hx


def test_rfc_vectors_decode_only():
    for hx, value in DECODE_ONLY:
        got = decode(h(hx))
        assert got == value and type(got) is type(value), hx


def test_special_floats():
    for hx in ("f97e00", "fa7fc00000", "fb7ff8000000000000"):
        assert is_nan(decode(h(hx))), hx
    assert is_nan(decode(encode(float("nan"))))
    assert str(decode(h("f98000"))) == "-0.0"
    assert str(decode(encode(-0.0))) == "-0.0"
    assert encode(1.5) == h("fb3ff8000000000000")  # always float64


def test_head_size_boundaries():
    for n, size in ((23, 1), (24, 2), (255, 2), (256, 3), (65535, 3),
                    (65536, 5), (2**32 - 1, 5), (2**32, 9), (2**64 - 1, 9)):
        assert len(encode(n)) == size and decode(encode(n)) == n, n
        assert len(encode(-1 - n)) == size and decode(encode(-1 - n)) == -1 - n, n
    # Non-shortest heads are still valid input.
    assert decode(h("1b0000000000000001")) == 1
    assert decode(h("3a00000000")) == -1
    assert decode(h("780161")) == "a"


def test_record_round_trip():
    assert decode(encode(RECORD)) == RECORD
    assert decode(encode(tuple(RECORD))) == RECORD
    nested = {"a": [1, {"b": [b"", "", None, True, False, -1.25]}], 7: {}, -3: []}
    assert decode(encode(nested)) == nested
    assert encode(bytearray(b"\x00\x01")) == h("420001")
    assert encode(["x", {"door": "front"}]) == h("826178a164646f6f726566726f6e74")


def test_buffer_types():
    data = encode(RECORD)
    for buf in (data, bytearray(data), memoryview(data)):
        got = decode(buf)
        assert got == RECORD
        assert type(got[4]["b"]) is bytes
    # A memoryview window inside a bigger buffer
    big = b"\xaa\xaa" + data + b"\xbb"
    assert decode(memoryview(big)[2:-1]) == RECORD


def test_decode_from_reads_records_in_turn():
    recs = [RECORD, {"n": 1}, "x", 0, [], None]
    buf = bytearray()
    for r in recs:
        buf += encode(r)
    pos, out = 0, []
    while pos < len(buf):
        r, pos = decode_from(memoryview(buf), pos)
        out.append(r)
    assert out == recs and pos == len(buf)
    assert decode_from(h("0102"), 1) == (2, 2)


def test_truncated_input():
    data = encode(RECORD)
    for n in range(len(data)):
        e = raises(CBORError, decode, data[:n])
        assert "offset" in str(e), n
    for hx in ("18", "19ff", "1a000000", "fb3ff8", "f97e", "5f", "5f41", "9f", "bf6161", "c1"):
        raises(CBORError, decode, h(hx))
    # The offset is that of the item whose bytes run out.
    assert "truncated input at offset 2" in str(raises(CBORError, decode, h("820119ff")))
    raises(CBORError, decode_from, h("00"), 1)


def test_huge_declared_length_is_refused_before_allocating():
    for head in ("5b", "7b", "9b", "bb"):
        e = raises(CBORError, decode, h(head + "ff" * 8))
        assert "exceeds input at offset 0" in str(e), head
    raises(CBORError, decode, h("5affffffff00"))
    raises(CBORError, decode, h("a2616101"))  # 2 pairs declared, room for 1
    raises(CBORError, decode, h("8201"))


def test_invalid_utf8():
    for hx in ("61ff", "62c328", "62c080", "63eda080", "64f4908080", "62e282",
               "61c3", "7f61ffff", "8261616180"):
        e = raises(CBORError, decode, h(hx))
        assert "UTF-8" in str(e), hx
    # The offset is that of the string's first byte of content.
    assert "offset 4" in str(raises(CBORError, decode, h("82616161ff")))


def test_trailing_bytes():
    e = raises(CBORError, decode, h("0000"))
    assert "trailing" in str(e) and "offset 1" in str(e)
    raises(CBORError, decode, encode(RECORD) + b"\x00")
    assert decode_from(h("0000")) == (0, 1)


def test_nesting_limit():
    deep = 0
    for _ in range(MAX_DEPTH):
        deep = [deep]
    assert decode(h("81" * MAX_DEPTH + "00")) == deep
    raises(CBORError, decode, h("81" * (MAX_DEPTH + 1) + "00"))
    raises(CBORError, decode, h("9f" * 1000))  # must not hit the recursion limit
    raises(CBORError, decode, h("c1" * (MAX_DEPTH + 1) + "00"))
    assert decode(encode(deep)) == deep
    raises(CBORError, encode, [deep])
    loop = []
    loop.append(loop)
    raises(CBORError, encode, loop)


def test_stray_break():
    for hx in ("ff", "81ff", "a1ff01", "a101ff", "bf01ff", "c1ff", "82ff01"):
        e = raises(CBORError, decode, h(hx))
        assert "break" in str(e), hx
    assert "offset 1" in str(raises(CBORError, decode, h("81ff")))


def test_malformed_heads():
    for hx in ("1c", "1d", "1e", "3c", "5c", "7c", "9c", "bc", "dc", "fc", "fd", "fe"):
        assert "reserved" in str(raises(CBORError, decode, h(hx))), hx
    for hx in ("1f", "3f", "df"):
        assert "indefinite" in str(raises(CBORError, decode, h(hx))), hx
    for hx in ("5f6161ff", "5f5f4101ffff", "7f4161ff"):  # bad chunks
        raises(CBORError, decode, h(hx))
    for hx in ("f0", "f820", "f8ff"):  # simple values we do not know
        raises(CBORError, decode, h(hx))
    assert "duplicate" in str(raises(CBORError, decode, h("a2616101616102")))
    assert "unhashable" in str(raises(CBORError, decode, h("a18001")))


def test_unsupported_on_encode():
    e = raises(CBORError, encode, {1, 2})
    assert "set" in str(e)
    assert "object" in str(raises(CBORError, encode, [object()]))
    raises(CBORError, encode, {1.5: 1})
    raises(CBORError, encode, {True: 1})
    raises(CBORError, encode, {(1,): 1})
    raises(CBORError, encode, 2**64)
    raises(CBORError, encode, -2**64 - 1)
    assert isinstance(raises(CBORError, encode, 2**64), ValueError)
