# One user as the store keeps it: a short list (a dict per user would cost
# several times the RAM on MicroPython), the index keys it is found by,
# and the user as answers show it. What the cloud sends is checked by
# agent/access/check.py before it becomes one.
#
# A PIN is kept only as a salted hash; the salt is the store's, random per
# device. Four to eight digits are few enough that whoever holds the flash
# and its salt can try them all: the hash keeps PINs out of answers, logs
# and dumps, it does not make a stolen flash safe.
import hashlib

from agent import records
from agent.codecs.ints import is_int

ID, NAME, CARDS, PIN, FP, ENABLED, FROM, UNTIL, SCHEDULE, DOORS = range(10)
FIELDS = ("id", "name", "cards", "pin", "fp", "enabled", "from", "until", "schedule", "doors")
MAX_CARDS = 4
CARD_LIMIT = 1 << 40    # agent/codecs/user_fields.py's, which only check.py loads
FP_PAGES = 65536        # ZFM template pages are 16-bit
PIN_HASH = 16

# Index kinds: a key is the first KEY bytes of sha256(salt | kind | value),
# so keys spread evenly whatever the values (cards are often consecutive)
# and a key alone does not give a PIN away.
BY_ID, BY_CARD, BY_PIN, BY_FP = b"i", b"c", b"p", b"f"
KINDS = (BY_ID, BY_CARD, BY_PIN, BY_FP)
KEY = 8
# Users in one user_set, sync page or user_list answer. A page is parsed
# whole before it reaches the store: 50 users are about 10 KB of objects
# on an ESP32 (18 KB on a 64-bit host), and about 5-15 KB of JSON, inside
# the default max_frame (16 KB).
PAGE = 50


def digest(salt, kind, value):
    h = hashlib.sha256(salt)
    h.update(kind)
    h.update(value)
    return h.digest()


def id_key(salt, uid):
    return digest(salt, BY_ID, uid.encode())[:KEY]


def card_key(salt, card):
    return digest(salt, BY_CARD, card.to_bytes(5, "big"))[:KEY]


def fp_key(salt, page):
    return digest(salt, BY_FP, page.to_bytes(2, "big"))[:KEY]


def pin_hash(salt, pin):
    return digest(salt, BY_PIN, pin.encode())[:PIN_HASH]


def keys(rec, salt):
    """[(kind, key)] of every index the user is found in."""
    out = [(BY_ID, id_key(salt, rec[ID]))]
    for c in rec[CARDS]:
        out.append((BY_CARD, card_key(salt, c)))
    if rec[PIN] is not None:
        out.append((BY_PIN, rec[PIN][:KEY]))
    if rec[FP] is not None:
        out.append((BY_FP, fp_key(salt, rec[FP])))
    return out


def public(rec):
    """The user as an answer shows it: never the PIN, not even hashed
    ("pin": true when one is set)."""
    user = {"id": rec[ID], "name": rec[NAME], "cards": list(rec[CARDS]), "enabled": rec[ENABLED]}
    if rec[PIN] is not None:
        user["pin"] = True
    for i in (FP, FROM, UNTIL, SCHEDULE, DOORS):
        if rec[i] is not None:
            user[FIELDS[i]] = rec[i]
    return user


def readable(rec):
    """Whether a record read back from flash has the shape check() gives
    (a CRC guards the bytes; this guards against a record from a future or
    broken writer reaching the policy)."""
    if not isinstance(rec, list) or len(rec) != len(FIELDS):
        return False
    if not isinstance(rec[ID], str) or not isinstance(rec[NAME], str) or not isinstance(rec[CARDS], list):
        return False
    if not isinstance(rec[ENABLED], bool) or len(rec[CARDS]) > MAX_CARDS:
        return False
    for c in rec[CARDS]:
        if not is_int(c) or not 0 <= c < CARD_LIMIT:
            return False
    if rec[PIN] is not None and (not isinstance(rec[PIN], bytes) or len(rec[PIN]) != PIN_HASH):
        return False
    if rec[FP] is not None and not (is_int(rec[FP]) and 0 <= rec[FP] < FP_PAGES):
        return False
    for i in (FROM, UNTIL):
        if rec[i] is not None and not records.plausible_time(rec[i]):
            return False
    if rec[SCHEDULE] is not None:
        # Loaded by the first user with a schedule: many boards have none (RAM).
        from agent.schedule import problem
        if problem(rec[SCHEDULE]):
            return False
    return rec[DOORS] is None or isinstance(rec[DOORS], list)
