# Cross-checks of agent/codecs/cbor.py against cbor2 (CPython only).
import math
import struct

import cbor2
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.codecs.cbor import CBORError, decode, decode_from, encode

EXAMPLES = settings(max_examples=300, deadline=None)
FEWER = settings(max_examples=100, deadline=None)

INTS = st.integers(min_value=-2**64, max_value=2**64 - 1)
LEAVES = st.none() | st.booleans() | INTS | st.floats() | st.text() | st.binary()
FLOATLESS_LEAVES = st.none() | st.booleans() | INTS | st.text() | st.binary()


def tree(leaves):
    return st.recursive(
        leaves,
        lambda kids: st.lists(kids, max_size=5)
        | st.dictionaries(st.text(max_size=8), kids, max_size=5),
        max_leaves=20)


VALUES = tree(LEAVES)
FLOATLESS = tree(FLOATLESS_LEAVES)


def same(a, b):
    """Equality that also checks types (True != 1 here), treats NaN as equal
    to NaN and tells 0.0 from -0.0."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        if math.isnan(a):
            return math.isnan(b)
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return a == b


@EXAMPLES
@given(VALUES)
def test_cbor2_reads_what_we_write(x):
    assert same(cbor2.loads(encode(x)), x)


@EXAMPLES
@given(VALUES)
def test_we_read_what_cbor2_writes(x):
    assert same(decode(cbor2.dumps(x)), x)
    # canonical=True shrinks floats to float16/float32 where exact
    assert same(decode(cbor2.dumps(x, canonical=True)), x)
    assert same(decode(cbor2.dumps(x, indefinite_containers=True)), x)


@EXAMPLES
@given(FLOATLESS)
def test_same_bytes_as_cbor2_without_floats(x):
    # cbor2 (canonical=False) writes the shortest heads, definite lengths
    # and dicts in insertion order: the preferred serialization, as we do.
    # (Floats differ by design: we always write float64.)
    assert encode(x) == cbor2.dumps(x, canonical=False)


@FEWER
@given(st.lists(VALUES, max_size=4))
def test_records_back_to_back(xs):
    buf = b"".join(encode(x) for x in xs)
    pos, out = 0, []
    while pos < len(buf):
        x, pos = decode_from(buf, pos)
        out.append(x)
    assert same(out, xs)


@EXAMPLES
@given(st.floats(width=32))
def test_float32_input(f):
    assert same(decode(struct.pack(">Bf", 0xFA, f)), f)


def test_every_float16():
    for bits in range(0x10000):
        raw = struct.pack(">H", bits)
        want = struct.unpack(">e", raw)[0]
        assert same(decode(b"\xf9" + raw), want), hex(bits)


def _only_cbor_errors(data):
    try:
        decode(data)
    except CBORError:
        pass


@settings(max_examples=1000, deadline=None)
@given(st.binary(max_size=40))
def test_random_bytes_raise_only_cbor_error(data):
    _only_cbor_errors(data)


@FEWER
@given(VALUES, st.data())
def test_corrupted_records_raise_only_cbor_error(x, data):
    buf = bytearray(encode(x))
    i = data.draw(st.integers(0, len(buf) - 1))
    buf[i] = data.draw(st.integers(0, 255))
    _only_cbor_errors(bytes(buf))
    _only_cbor_errors(bytes(buf[:i]))
