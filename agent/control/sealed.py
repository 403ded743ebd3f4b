# Sealed scripts (the management channel's script/encrypt): a script kept
# on flash encrypted and authenticated under a key only this device holds,
# so a stolen board or a LittleFS image read off it does not give the text
# away, and a file changed there, cut short or sealed by another device is
# refused, never run. Pure but for the key file; AES is agent/hal/aes.py's.
#
# A sealed blob: MAGIC + iv (16) + AES-256-CBC(the text, PKCS#7-padded) +
# HMAC-SHA256 of everything before it (32, raw). Encrypt-then-MAC: nothing
# is decrypted before its MAC has been checked, so a tampered blob never
# reaches the cipher or the padding check (no padding oracle). The cipher
# key and the MAC key are derived from the device key under two labels:
# one key never serves two jobs.
#
# Heap: both work in place in the one buffer they return, so sealing or
# opening n bytes holds the input and that buffer (about 2n) at the peak.
import binascii
import os

from agent import small_file
from agent.codecs.signing import hmac_sha256
from agent.control.script_format import SEALED
from agent.errors import CommandError
from agent.hal import aes

MAGIC = SEALED   # script_format.py holds it: the store tells a sealed script apart without loading this module
KEY_FILE = ".device_key"
KEY_BYTES = 32
IV = 16
MAC = 32
HEAD = len(MAGIC) + IV
OVERHEAD = HEAD + MAC
MAX_BYTES = 16384    # a sealed blob's default cap (the caller passes its own)
_ENC_LABEL = b"doorlink sealed script: AES-256-CBC key"
_MAC_LABEL = b"doorlink sealed script: HMAC-SHA256 key"
FAILED = "sealed script fails its check (tampered, truncated or sealed by another device)"


class SealError(CommandError):
    """A script cannot be sealed or opened; the message says why. A
    CommandError, so a request that meets one is refused with it."""


def device_key(folder):
    """This device's 32-byte key, kept in folder/.device_key: made (random)
    on first use, read back ever after. SealError when the file holds
    anything but 32 bytes (it is left as it is: replacing it would lose
    every script sealed with it) or cannot be read or written."""
    path = folder + "/" + KEY_FILE
    try:
        key = small_file.read(folder, KEY_FILE, KEY_BYTES)
    except OSError as e:
        raise SealError("device key %s cannot be read (%s)" % (path, e)) from None
    if key is None:
        key = os.urandom(KEY_BYTES)
        try:
            _store_private(folder, key)
        except OSError as e:
            raise SealError("device key not stored: flash refused the write of %s (%s)" % (path, e)) from None
    elif len(key) != KEY_BYTES:
        raise SealError(
            "device key %s holds %s bytes, not %d; left as it is (scripts sealed with the right key would be "
            "lost): put the right file back, or delete it to start a new key (scripts sealed so far then "
            "cannot be opened)" % (path, len(key) if len(key) <= KEY_BYTES else "more than %d" % KEY_BYTES,
                                   KEY_BYTES))
    return key


def _store_private(folder, key):
    # Owner-only on a host (a Pi's other users must not read it): the umask
    # makes the file so from its first byte, where a chmod afterwards would
    # leave a moment with the key readable. MicroPython has no file modes.
    umask = getattr(os, "umask", None)
    old = umask(0o077) if umask else None
    try:
        small_file.write(folder, KEY_FILE, key)
    finally:
        if umask:
            umask(old)


def sealed_size(n):
    """Bytes of the blob that seals a text of n bytes."""
    return OVERHEAD + (n // aes.BLOCK + 1) * aes.BLOCK


def is_sealed(blob):
    """Whether `blob` claims to be sealed (only unseal proves it)."""
    return bytes(blob[:len(MAGIC)]) == MAGIC


def seal(key, text, max_bytes=MAX_BYTES):
    """The sealed blob (a bytearray) of `text` (bytes, or str as UTF-8)
    under the device key; SealError when it would be over max_bytes."""
    if isinstance(text, str):
        text = text.encode()
    size = sealed_size(len(text))
    if size > max_bytes:
        raise SealError("script too large to seal: %d bytes sealed into %d, at most %d"
                        % (len(text), size, max_bytes))
    enc_key, mac_key = _keys(key)
    iv = os.urandom(IV)
    n, end = len(text), size - MAC
    pad = end - HEAD - n      # PKCS#7: 1 to 16 bytes, each the count
    out = bytearray(size)
    out[:len(MAGIC)] = MAGIC
    out[len(MAGIC):HEAD] = iv
    out[HEAD:HEAD + n] = text
    out[HEAD + n:end] = bytes((pad,)) * pad
    view = memoryview(out)
    aes.cbc_encrypt(enc_key, iv, view[HEAD:end], view[HEAD:end])
    out[end:] = _mac(mac_key, view[:end])
    return out


def unseal(key, blob, max_bytes=MAX_BYTES):
    """The text (a bytearray) sealed in `blob` under the device key.
    SealError when the blob is over max_bytes, not sealed, or fails its
    check."""
    n = len(blob)
    if n > max_bytes:
        raise SealError("sealed script too large: %d bytes, at most %d" % (n, max_bytes))
    if not is_sealed(blob):
        raise SealError("not a sealed script (it does not start with %s)" % MAGIC.decode())
    if n < OVERHEAD + aes.BLOCK or (n - OVERHEAD) % aes.BLOCK:
        raise SealError(FAILED)
    enc_key, mac_key = _keys(key)
    view = memoryview(blob)
    if not _same(_mac(mac_key, view[:n - MAC]), view[n - MAC:]):
        raise SealError(FAILED)
    text = bytearray(view[HEAD:n - MAC])
    aes.cbc_decrypt(enc_key, bytes(view[len(MAGIC):HEAD]), text, text)
    pad = text[-1]
    # Past a good MAC the padding is ours: a bad one is a bug, still refused.
    if not 1 <= pad <= aes.BLOCK or text[-pad:] != bytes((pad,)) * pad:
        raise SealError(FAILED)
    text[-pad:] = b""   # in place: no second copy of the text
    return text


def _keys(key):
    if len(key) != KEY_BYTES:
        raise ValueError("a device key is %d bytes" % KEY_BYTES)
    return (binascii.unhexlify(hmac_sha256(key, _ENC_LABEL)),
            binascii.unhexlify(hmac_sha256(key, _MAC_LABEL)))


def _mac(mac_key, data):
    return binascii.unhexlify(hmac_sha256(mac_key, data))


def _same(a, b):
    # Constant time: a refused MAC must not tell how much of it was right.
    diff = len(a) ^ len(b)
    for i in range(min(len(a), len(b))):
        diff |= a[i] ^ b[i]
    return diff == 0
