# A user from the cloud, checked field by field before it becomes a record
# (agent/access/record.py): it is hostile input. Every field's type, size
# and range is checked (the text and number rules are the protocols' own,
# agent/codecs/user_fields.py), and a refusal is a ValueError naming the
# user and the field. Lists are measured before they are walked. Loaded
# with the first change, not at start (RAM).
from agent import records
from agent.access.record import (
    CARDS,
    DOORS,
    ENABLED,
    FIELDS,
    FP,
    FP_PAGES,
    FROM,
    ID,
    MAX_CARDS,
    NAME,
    PIN,
    SCHEDULE,
    UNTIL,
    pin_hash,
)
from agent.codecs import user_fields as uf
from agent.codecs.values import is_int
from agent.schedule import MAX_ENTRIES as MAX_SCHEDULE
from agent.schedule import problem as schedule_problem

# Fields that null removes (user_set merges: absent keeps the stored value).
OPTIONAL = ("pin", "fp", "from", "until", "schedule", "doors")
MAX_DOORS = 8
DOOR_NAME_MAX = 32
# A door is named in the board file with config.NAME_CHARS; config is
# dropped from memory after start (RAM), so the alphabet is spelled here
# too (tests/unit/test_access_config.py keeps the two the same). Plain
# names also keep a user's JSON small: no escapes.
DOOR_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-"


def new(uid):
    """A user that did not exist: enabled, with no credential."""
    return [uid, "", [], None, None, True, None, None, None, None]


def check(user, salt, old=None):
    """The cloud's user (a dict) merged over `old` (the stored record, or
    None) -> a new record. ValueError names what is wrong."""
    if not isinstance(user, dict):
        raise ValueError("a user must be an object")
    if len(user) > len(FIELDS):
        raise ValueError("a user has at most %d fields" % len(FIELDS))
    if "id" not in user:
        raise ValueError("a user needs an 'id'")
    uid = uf.user_id(scalar(user["id"], "id"), "id")
    rec = list(old) if old is not None else new(uid)
    rec[ID] = uid
    for key in user:
        if key not in FIELDS:
            raise ValueError("user %s: no field '%s' (fields: %s)" % (uid, str(key)[:32], ", ".join(FIELDS)))
        if key == "id":
            continue
        try:
            _field(rec, key, user[key], salt)
        except ValueError as e:
            raise ValueError("user %s: %s" % (uid, e))
    if rec[FROM] is not None and rec[UNTIL] is not None and rec[FROM] >= rec[UNTIL]:
        raise ValueError("user %s: 'from' must be before 'until'" % uid)
    return rec


def _field(rec, key, v, salt):
    i = FIELDS.index(key)
    if v is None:
        if key not in OPTIONAL:
            raise ValueError("'%s' cannot be null" % key)
        rec[i] = None
    elif key == "name":
        rec[NAME] = uf.name(scalar(v, "name"), "name")
    elif key == "enabled":
        if not isinstance(v, bool):
            raise ValueError("'enabled' must be true or false")
        rec[ENABLED] = v
    elif key == "cards":
        rec[CARDS] = _cards(v)
    elif key == "pin":
        # true is how an answer shows a PIN that is set: sent back, it keeps it.
        if v is not True:
            rec[PIN] = pin_hash(salt, uf.pin(v, "pin"))
    elif key == "fp":
        if not is_int(v) or not 0 <= v < FP_PAGES:
            raise ValueError("'fp' must be a template page from 0 to %d" % (FP_PAGES - 1))
        rec[FP] = v
    elif key in ("from", "until"):
        if not records.plausible_time(v):
            raise ValueError("'%s' must be an epoch in 2020-2100" % key)
        rec[i] = v
    elif key == "schedule":
        # schedule.problem() quotes a bad entry whole: only flat ones reach it.
        if isinstance(v, list) and len(v) <= MAX_SCHEDULE:
            for e in v:
                if isinstance(e, list) and (len(e) != 3 or not all(is_int(x) for x in e)):
                    raise ValueError("'schedule' entries must be [days_mask, start_minute, end_minute] integers")
        why = schedule_problem(v)
        if why:
            raise ValueError("'schedule' %s" % why)
        rec[SCHEDULE] = [[e[0], e[1], e[2]] for e in v]
    else:
        rec[DOORS] = _doors(v)


def scalar(v, what):
    # user_fields quotes a bad value in its message: a list or an object
    # there could be nested thousands deep or hold a million items, and
    # quoting it would recurse or allocate without bound.
    if isinstance(v, (list, dict, tuple)):
        raise ValueError("%s must be a number or text, not a list or an object" % what)
    return v


def _cards(v):
    if not isinstance(v, list) or len(v) > MAX_CARDS:
        raise ValueError("'cards' must be a list of at most %d card numbers" % MAX_CARDS)
    out = []
    for c in v:
        n = uf.card(scalar(c, "card"), "card")
        if n in out:
            raise ValueError("card %d is listed twice" % n)
        out.append(n)
    return out


def _doors(v):
    if not isinstance(v, list) or len(v) > MAX_DOORS:
        raise ValueError("'doors' must be a list of at most %d door names" % MAX_DOORS)
    out = []
    for d in v:
        if not isinstance(d, str) or not 1 <= len(d) <= DOOR_NAME_MAX or [c for c in d if c not in DOOR_CHARS]:
            raise ValueError("'doors' must hold door names of 1 to %d letters, digits, '.', '_' or '-'"
                             % DOOR_NAME_MAX)
        if d not in out:
            out.append(d)
    return out


