# Sealed scripts across runtimes: a blob sealed on MicroPython (cryptolib)
# opens on CPython (the `cryptography` package) and back, so both are the
# same AES-256-CBC and the same format; a blob is opened a second way, with
# CPython's hmac and cryptography's own PKCS#7, from the format alone; a
# runtime without AES refuses with a message saying so; and the heap that
# sealing costs a board is measured.
import binascii
import hashlib
import hmac
import json
import subprocess
import sys

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from agent.control import sealed
from agent.errors import CommandError
from host_tools import mpy
from host_tools.paths import ROOT

KEY = bytes(range(100, 132))
LENGTHS = (0, 1, 15, 16, 17, 4096)

# Seals what it is given, or opens it: stdin {"key", "seal": [hex], "open":
# [hex]}; prints "@@" + {"sealed": [hex], "opened": [hex or the refusal]}.
SCRIPT = """
import binascii, json, sys
from agent.control import sealed
job = json.loads(sys.stdin.read())
key = binascii.unhexlify(job["key"])
out = {"sealed": [], "opened": []}
for t in job["seal"]:
    out["sealed"].append(binascii.hexlify(sealed.seal(key, binascii.unhexlify(t))).decode())
for b in job["open"]:
    try:
        out["opened"].append(binascii.hexlify(sealed.unseal(key, binascii.unhexlify(b))).decode())
    except sealed.SealError as e:
        out["opened"].append("refused: " + str(e))
print("@@" + json.dumps(out))
"""

# What `import agent.control.sealed` costs (the modules the management
# channel has loaded anyway apart from its own), what one seal + unseal of a
# 4 KB text allocates (gc off: a bound on its peak), and what stays after
# repeated calls, from the deployable .mpy files. With an argument: only
# whether the imports and that text (`base`), or also a seal and an unseal
# with both results held (`seal`), fit the heap, for the smallest heap each
# needs.
HEAP_SCRIPT = """
import gc, sys
gc.collect()
base = gc.mem_alloc()
import agent.hal, agent.errors, agent.small_file, agent.codecs.signing
gc.collect()
shared = gc.mem_alloc() - base
from agent.control import sealed
gc.collect()
own = gc.mem_alloc() - base - shared
text = bytes(range(256)) * 16
key = bytes(32)
if len(sys.argv) > 1:
    if sys.argv[1] == "seal":
        blob = sealed.seal(key, text)
        back = sealed.unseal(key, blob)
        assert back == text
    print("fits")
    sys.exit(0)
gc.collect()
before = gc.mem_alloc()
gc.disable()
blob = sealed.seal(key, text)
seal = gc.mem_alloc() - before
gc.enable()
gc.collect()
before = gc.mem_alloc()
gc.disable()
back = sealed.unseal(key, blob)
unseal = gc.mem_alloc() - before
gc.enable()
assert back == text
gc.collect()
kept = []
for i in range(3):
    blob = back = None
    gc.collect()
    kept.append(gc.mem_alloc() - before)
    back = sealed.unseal(key, sealed.seal(key, text))
print(shared, own, seal, unseal, kept[1], kept[2])
"""


def _text(n):
    return bytes((i * 13 + 5) & 0xFF for i in range(n))


def _hex(b):
    return binascii.hexlify(b).decode()


async def _micropython(micropython, tmp_path, job):
    script = tmp_path / "seal.py"
    script.write_text(SCRIPT)
    ran = await micropython.run(script, stdin=json.dumps({"key": _hex(KEY), **job}).encode(), timeout=60)
    line = [x for x in ran.out.splitlines() if x.startswith("@@")]
    assert line, ran.out
    return json.loads(line[0][2:])


async def test_sealed_on_micropython_opens_on_cpython(micropython, tmp_path):
    got = await _micropython(micropython, tmp_path, {"seal": [_hex(_text(n)) for n in LENGTHS], "open": []})
    assert len(got["sealed"]) == len(LENGTHS)
    for n, blob in zip(LENGTHS, got["sealed"], strict=True):
        assert sealed.unseal(KEY, binascii.unhexlify(blob)) == _text(n)
        assert _independent_open(KEY, binascii.unhexlify(blob)) == _text(n)


async def test_sealed_on_cpython_opens_on_micropython_and_a_changed_one_does_not(micropython, tmp_path):
    blobs = [sealed.seal(KEY, _text(n)) for n in LENGTHS]
    tampered = bytearray(blobs[-1])
    tampered[2000] ^= 0x10
    got = await _micropython(micropython, tmp_path, {"seal": [], "open": [_hex(b) for b in blobs + [tampered]]})
    assert got["opened"][:-1] == [_hex(_text(n)) for n in LENGTHS]
    assert got["opened"][-1] == "refused: " + sealed.FAILED


def _independent_open(key, blob):
    """The text in `blob`, from the format alone: keys derived with CPython's
    hmac, the MAC checked with it, AES-CBC and PKCS#7 unpadding by
    `cryptography`."""
    enc_key = hmac.new(key, b"doorlink sealed script: AES-256-CBC key", hashlib.sha256).digest()
    mac_key = hmac.new(key, b"doorlink sealed script: HMAC-SHA256 key", hashlib.sha256).digest()
    assert blob[:4] == b"DLS1"
    iv, body, mac = blob[4:20], blob[20:-32], blob[-32:]
    assert hmac.compare_digest(hmac.new(mac_key, blob[:-32], hashlib.sha256).digest(), mac)
    d = Cipher(algorithms.AES(enc_key), modes.CBC(iv)).decryptor()
    padded = d.update(body) + d.finalize()
    u = padding.PKCS7(128).unpadder()
    return u.update(padded) + u.finalize()


def test_cpythons_blob_opens_by_the_format_alone():
    for n in LENGTHS:
        assert _independent_open(KEY, sealed.seal(KEY, _text(n))) == _text(n)


def test_a_python_without_aes_refuses_with_what_is_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "cryptography.hazmat.primitives.ciphers", None)
    try:
        sealed.seal(KEY, b"x")
    except CommandError as e:
        assert str(e) == "this Python has no AES: install the `cryptography` package"
    else:
        raise AssertionError("sealed without AES")


def test_a_firmware_without_cryptolib_refuses_with_what_is_missing(tmp_path):
    # A cryptolib.py first on the path stands for a firmware built without it.
    (tmp_path / "cryptolib.py").write_text("raise ImportError('no module named cryptolib')\n")
    script = tmp_path / "try.py"
    script.write_text("from agent.control import sealed\n"
                      "try:\n    sealed.seal(bytes(32), b'x')\n"
                      "except Exception as e:\n    print(type(e).__name__, isinstance(e, sealed.CommandError), e)\n")
    res = subprocess.run([mpy.tool("micropython"), str(script)], env=mpy.micropython_env(tmp_path, ROOT),
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert res.stdout.strip() == "CommandError True this firmware has no AES (cryptolib): flash one built with it", (
        res.stdout + res.stderr)


def _smallest_heap_kb(script, mode):
    """The smallest heap (KB) in which `script mode` runs to its end."""
    low, high = 8, 256    # does not fit, fits

    def fits(kb):
        res = subprocess.run([mpy.tool("micropython"), "-X", "heapsize=%dk" % kb, str(script), mode],
                             env=mpy.micropython_env(mpy.build_deploy()), cwd=script.parent,
                             capture_output=True, text=True, timeout=60)
        return res.stdout.strip() == "fits"

    assert fits(high)
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if fits(mid) else (mid, high)
    return high


def test_heap_of_sealing_a_4k_script_on_micropython(tmp_path, figure):
    script = tmp_path / "heap.py"
    script.write_text(HEAP_SCRIPT)
    res = subprocess.run([mpy.tool("micropython"), "-X", "heapsize=256k", str(script)],
                         env=mpy.micropython_env(mpy.build_deploy()), cwd=tmp_path,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr
    shared, own, seal, unseal, kept1, kept2 = (int(x) for x in res.stdout.split())
    base, both = _smallest_heap_kb(script, "base"), _smallest_heap_kb(script, "seal")
    figure("sealed scripts, unix port from .mpy: import agent.control.sealed + agent.hal.aes %.1f KB (beside "
           "%.1f KB of hal, errors, small_file and signing the management channel loads anyway); a 4 KB script "
           "allocates %.1f KB to seal, %.1f KB to open (gc off); smallest heap %d KB to hold the text, %d KB to "
           "also seal and open it (both results held); %.1f KB kept after it, %.1f KB after the next"
           % (own / 1024, shared / 1024, seal / 1024, unseal / 1024, base, both, kept1 / 1024, kept2 / 1024))
    # Both work in place: the text is copied into the one buffer returned,
    # not once more per step; repeated seals keep nothing more.
    assert seal < 3 * 4096 and unseal < 3 * 4096
    assert kept2 <= kept1
