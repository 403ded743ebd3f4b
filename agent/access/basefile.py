# The store's base file: immutable once written, replaced whole.
#
#   records   one frame per user (agent/journal.py's frame: marker, length,
#             CRC32, then the CBOR record of agent/access/record.py)
#   indexes   id, card, PIN, fingerprint: sorted fixed-size entries
#             (agent/access/index.py), one after the other
#   trailer   MAGIC | generation | salt | users | end of records |
#             (start, count) of each index | CRC32 of all before it
#
# The trailer comes last so the file is written front to back in one go
# (nothing is rewritten in place: a NOR flash cannot, and the crash-model
# file system of the tests need not pretend it can). A new base is written
# to TMP, synced, renamed over BASE and its folder synced: a power cut
# leaves the old base or the new one, never a mix. The generation is
# random per base; the delta log is tagged with it, so changes made on an
# older base are never applied to a newer one. Writing one:
# agent/access/build.py.
import os
from binascii import crc32

from agent.access import index
from agent.access import record as R
from agent.codecs import cbor
from agent.journal import HEADER, MAGIC

BASE = "base"
# What a build writes before the rename (agent/access/build.py): found at
# start, such files are what a power cut left of one.
TMP = "base.tmp"
STAGE = "stage."
TRAILER_MAGIC = b"DLU1"
SALT = 16
TRAILER = 4 + 4 + SALT + 4 + 4 + 8 * len(R.KINDS) + 4
# One encoded user: check() bounds every field, so a real one is well under
# this; a longer length on flash is corruption.
MAX_RECORD = 1024


class BadBase(Exception):
    """The base file is not one this code wrote whole (bit rot, a stray file)."""


def new_generation(old=0):
    while True:
        g = int.from_bytes(os.urandom(4), "big")
        if g and g != old:
            return g


def trailer(gen, salt, users, rec_end, regions):
    """The last bytes of a base, as read_trailer() reads them."""
    t = bytearray(TRAILER_MAGIC)
    t += gen.to_bytes(4, "big")
    t += salt
    t += users.to_bytes(4, "big") + rec_end.to_bytes(4, "big")
    for start, count in regions:
        t += start.to_bytes(4, "big") + count.to_bytes(4, "big")
    t += (crc32(t) & 0xFFFFFFFF).to_bytes(4, "big")
    return t


def _u32(b, i):
    return int.from_bytes(b[i:i + 4], "big")


def read_trailer(f):
    """(generation, salt, users, end of records, [(start, count)] per kind)
    of an open base file; BadBase when it does not hold together."""
    f.seek(0, 2)
    size = f.tell()
    if size < TRAILER:
        raise BadBase("%d bytes: shorter than its trailer" % size)
    f.seek(size - TRAILER)
    t = f.read(TRAILER)
    if len(t) != TRAILER or t[:4] != TRAILER_MAGIC:
        raise BadBase("no trailer")
    if crc32(t[:-4]) & 0xFFFFFFFF != _u32(t, TRAILER - 4):
        raise BadBase("trailer CRC mismatch")
    gen, salt, users, rec_end = _u32(t, 4), bytes(t[8:8 + SALT]), _u32(t, 8 + SALT), _u32(t, 12 + SALT)
    regions = []
    pos = rec_end
    for k in range(len(R.KINDS)):
        start, count = _u32(t, 16 + SALT + 8 * k), _u32(t, 20 + SALT + 8 * k)
        if start != pos:
            raise BadBase("index %d is not where it should be" % k)
        pos = start + count * index.ENTRY
        regions.append((start, count))
    if pos != size - TRAILER or users != regions[0][1]:
        raise BadBase("sizes do not add up")
    return gen, salt, users, rec_end, regions


def read_frame(f, pos, limit):
    """The payload of the frame at `pos` (ending by `limit`), or None when
    none is whole there."""
    f.seek(pos)
    head = f.read(HEADER)
    if len(head) < HEADER or head[0] != MAGIC:
        return None
    n = (head[1] << 8) | head[2]
    if n > MAX_RECORD or pos + HEADER + n > limit:
        return None
    payload = f.read(n)
    if len(payload) < n or crc32(payload, crc32(head[1:3])) & 0xFFFFFFFF != _u32(head, 3):
        return None
    return payload


def decode(payload):
    """A record from a frame's payload, or None when it is not one."""
    try:
        rec = cbor.decode(payload)
    except ValueError:
        return None
    return rec if R.readable(rec) else None


def leftovers(names):
    """Whether a folder listing holds what a build left behind."""
    for n in names:
        if n == TMP or n.startswith(STAGE):
            return True
    return False


# The change log beside the base (agent/access/changes.py writes it, users.py
# reads it): its file names and the RAM table that indexes it.
DELTA = "delta"
DELTA_TMP = "delta.tmp"
DELTA_MAX = 64          # changes kept in the delta before they are folded into a new base
DENTRY = R.KEY + 4      # key | kind (1 byte) | offset in the delta (3 bytes)
# The delta's table (3 KB), allocated once at start: room for DELTA_MAX changes
# of three keys each (id, a card, a PIN) and then some; past it, or past
# DELTA_MAX, the delta is folded. While folding fails (a full flash), the
# table fills and changes are refused.
DELTA_TABLE = 4 * DELTA_MAX * DENTRY
MAX_KEYS = 1 + R.MAX_CARDS + 2   # id, cards, PIN, fingerprint
