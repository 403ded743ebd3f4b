# AES-256-CBC, the cipher of sealed scripts (agent/control/sealed.py):
# `cryptolib` on MicroPython (mode 2 is CBC), the `cryptography` package on
# CPython. Both are imported at each call, not with this module: a
# firmware built without cryptolib, or a Python without the package, then
# refuses the one request that wanted AES with a CommandError saying what
# is missing, and the agent runs on.
#
# `out` (a writable buffer as long as `data`, which may be `data` itself)
# takes the result in place: a board then holds a sealed script once, not
# once in and once out.
from agent.errors import CommandError
from agent.hal import MICROPYTHON

BLOCK = 16
KEY_BYTES = 32
_CBC = 2   # cryptolib's mode number for CBC


def _check(key, iv, data, out):
    if len(key) != KEY_BYTES or len(iv) != BLOCK or len(data) % BLOCK:
        raise ValueError("AES-256-CBC takes a 32-byte key, a 16-byte iv and whole 16-byte blocks")
    if out is not None and len(out) != len(data):
        raise ValueError("AES-256-CBC writes as many bytes as it reads")


if MICROPYTHON:
    def _aes(key, iv):
        try:
            import cryptolib
        except ImportError:
            raise CommandError("this firmware has no AES (cryptolib): flash one built with it") from None
        # One object per call: a cryptolib object is either an encryptor or
        # a decryptor, and carries the CBC chain from one call to the next.
        return cryptolib.aes(key, _CBC, iv)

    def cbc_encrypt(key, iv, data, out=None):
        """AES-256-CBC of `data` (whole blocks, no padding added): new
        bytes, or written into `out` and `out` returned."""
        _check(key, iv, data, out)
        if out is None:
            return _aes(key, iv).encrypt(data)
        _aes(key, iv).encrypt(data, out)
        return out

    def cbc_decrypt(key, iv, data, out=None):
        """The inverse of cbc_encrypt (no padding removed)."""
        _check(key, iv, data, out)
        if out is None:
            return _aes(key, iv).decrypt(data)
        _aes(key, iv).decrypt(data, out)
        return out

else:
    def _cipher(key, iv):
        try:
            from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
        except ImportError:
            raise CommandError("this Python has no AES: install the `cryptography` package") from None
        return Cipher(algorithms.AES(key), modes.CBC(iv))

    def _run(ctx, data, out):
        result = ctx.update(data) + ctx.finalize()
        if out is None:
            return result
        out[:] = result   # a host's memory is not scarce: a copy is fine
        return out

    def cbc_encrypt(key, iv, data, out=None):
        """AES-256-CBC of `data` (whole blocks, no padding added): new
        bytes, or written into `out` and `out` returned."""
        _check(key, iv, data, out)
        return _run(_cipher(key, iv).encryptor(), data, out)

    def cbc_decrypt(key, iv, data, out=None):
        """The inverse of cbc_encrypt (no padding removed)."""
        _check(key, iv, data, out)
        return _run(_cipher(key, iv).decryptor(), data, out)
