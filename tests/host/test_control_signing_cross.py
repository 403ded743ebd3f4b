# Signed management requests are computed on the device by our own HMAC
# and canonical JSON (agent/codecs/signing.py: MicroPython has no hmac
# module and its json sorts nothing): cross-checked here against CPython's
# hmac and json.dumps(sort_keys=True, separators=(",", ":"),
# ensure_ascii=True), for what CPython computes AND what MicroPython does.
import hashlib
import hmac
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from agent.codecs.signing import canon, hmac_sha256

TEXT = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=12)
LEAVES = st.none() | st.booleans() | st.integers(min_value=-2**70, max_value=2**70) | TEXT
VALUES = st.recursive(LEAVES, lambda kids: st.lists(kids, max_size=4) | st.dictionaries(TEXT, kids, max_size=4),
                      max_leaves=16)


def reference(v):
    return json.dumps(v, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


@settings(max_examples=300, deadline=None)
@given(VALUES)
def test_canon_is_cpythons_sorted_ascii_json(v):
    assert canon(v) == reference(v)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200), st.binary(max_size=300))
def test_hmac_is_cpythons(key, msg):
    assert hmac_sha256(key, msg) == hmac.new(key, msg, hashlib.sha256).hexdigest()


SCRIPT = """
import json, sys
from agent.codecs.signing import canon, hmac_sha256
cases = json.loads(sys.stdin.read())
out = []
for key, v in cases:
    c = canon(v)
    out.append([c, hmac_sha256(key.encode(), c.encode())])
print("@@" + json.dumps(out))
"""


async def test_micropython_signs_what_cpython_signs(micropython, tmp_path):
    values = [None, {"b": 1, "a": [True, False, None]}, "é\u2028😀\x00\x7f\"\\/", -2**66,
              {"path": "/lua/scripts/a.dat", "data": "QUJD" * 50}, {"ü": {"ä": ["ö", 0]}},
              [[[]], {}], {"z": 1, "Z": 2, "_": 3, "aa": 4, "a": 5},
              # Sent escaped (json.dumps): MicroPython keeps the emoji as two surrogates.
              {"\ue000": 1, "😀": 2, "\uffff": 3, "a😀": 4, "a\ue000": 5}]
    keys = ["k" * 16, "a much longer shared secret than one block of sixty-four bytes, really!!", "ключ-сайта-16симв"]
    cases = [[keys[i % len(keys)], v] for i, v in enumerate(values)]
    script = tmp_path / "sign.py"
    script.write_text(SCRIPT)
    ran = await micropython.run(script, stdin=json.dumps(cases).encode(), timeout=60)
    line = [x for x in ran.out.splitlines() if x.startswith("@@")]
    assert line, ran.out
    got = json.loads(line[0][2:])
    for (key, v), (c, mac) in zip(cases, got, strict=True):
        assert c == reference(v)
        assert mac == hmac.new(key.encode(), c.encode(), hashlib.sha256).hexdigest()
