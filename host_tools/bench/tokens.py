"""How the bench keeps secrets: device and admin tokens are stored only as
slow salted hashes (scrypt, from the standard library), so a copy of the
SQLite file does not hand out the keys to every door, and a guessed token
costs an attacker as much as it costs the bench.

A stored hash reads `scrypt$N$r$p$SALT$KEY` (salt and key in base64), so
the parameters can be raised later without breaking older rows. Checks
compare in constant time, and a check against no stored hash at all (an
unknown device or admin) is made against DUMMY, so it costs the same as a
wrong token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

SCHEME = "scrypt"
# About 50 ms and 16 MiB per check on the development machine: slow for a
# guesser, bearable for a device that registers once per connection.
N, R, P = 1 << 14, 8, 1
KEY_BYTES = 32
SALT_BYTES = 16
# A row's parameters are believed only up to these: a tampered database
# must not make one check take minutes or gigabytes.
MAX_N, MAX_R, MAX_P = 1 << 20, 32, 4


def _derive(token: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(token.encode("utf-8", "surrogatepass"), salt=salt, n=n, r=r, p=p,
                          maxmem=256 * n * r + (1 << 20), dklen=KEY_BYTES)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_token(token: str) -> str:
    """The stored form of `token`, with a fresh salt."""
    salt = os.urandom(SALT_BYTES)
    return f"{SCHEME}${N}${R}${P}${_b64(salt)}${_b64(_derive(token, salt, N, R, P))}"


def _parse(stored: str) -> tuple[int, int, int, bytes, bytes] | None:
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] != SCHEME:
        return None
    try:
        n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
        salt = base64.b64decode(parts[4], validate=True)
        key = base64.b64decode(parts[5], validate=True)
    except ValueError:
        return None
    if not (1 < n <= MAX_N and n & (n - 1) == 0 and 0 < r <= MAX_R and 0 < p <= MAX_P and salt and key):
        return None
    return n, r, p, salt, key


def is_hashed(stored: str) -> bool:
    """True for a stored hash; False for a token kept as given (a
    database from before hashing, migrated when the store opens it)."""
    return _parse(stored) is not None


DUMMY = hash_token(os.urandom(16).hex())


def verify(stored: str | None, token: str) -> bool:
    """Does `token` match the stored hash? `stored` None (nobody by that
    name) is checked against DUMMY first, so it takes as long as a wrong
    token. Slow by design: call it off the event loop."""
    parsed = _parse(stored) if stored is not None else None
    n, r, p, salt, key = parsed or _parse(DUMMY)
    ok = hmac.compare_digest(_derive(str(token), salt, n, r, p), key)
    return ok and parsed is not None
