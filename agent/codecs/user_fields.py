# A user's fields as the cloud protocols write them, read strictly: the
# XML SetUserData and CloudSolution's setuserinfo both carry a user id, a
# name, a card number, a PIN and yes/no flags, and a hostile or garbled
# value must be refused here, with its field named, before anything is
# built from it (a 10 KB UserId, a card of 500 digits, "Enabled: maybe").
# Limits are the user store's (docs/door-controller.md section 5). Pure
# functions; a refusal is a ValueError whose text is the answer's reason.
from agent.codecs.values import as_int, is_int

MAX_ID = 32
MAX_NAME = 32
CARD_LIMIT = 1 << 40
_YES = ("yes", "y", "true", "1", "on")
_NO = ("no", "n", "false", "0", "off")


def _cut(v):
    text = repr(v)
    return text if len(text) <= 24 else text[:24] + "..."


def _printable(s):
    for c in s:
        if c < " " or c == "\x7f":
            return False
    return True


def _text(v, limit, what):
    # The length is judged before strip() copies anything; padding (which
    # vendor firmware adds) gets some room.
    if len(v) > limit + 16:
        raise ValueError("%s is %d characters long: at most %d" % (what, len(v), limit))
    v = v.strip()
    if len(v) > limit:
        raise ValueError("%s is %d characters long: at most %d" % (what, len(v), limit))
    if not _printable(v):
        raise ValueError("%s holds a control character" % what)
    return v


def user_id(v, what="user id"):
    """A user id: text of 1..32 printable characters, or a non-negative
    integer (CloudSolution's enrollid), as text."""
    if is_int(v) and 0 <= v < 10 ** MAX_ID:
        return str(v)
    if not isinstance(v, str):
        raise ValueError("%s must be a number or text, not %s" % (what, _cut(v)))
    v = _text(v, MAX_ID, what)
    if not v:
        raise ValueError("%s is empty" % what)
    return v


def user_of(result):
    """The user in a user_get answer ({"user": USER}; a bare USER is taken
    too)."""
    user = result.get("user") if isinstance(result, dict) else None
    return user if isinstance(user, dict) else result


def wire_id(uid):
    """A stored user id as a protocol writes it: an integer when it is one
    written plainly (no sign, no leading zero), else the text."""
    n = as_int(uid)
    if n is not None and n >= 0 and str(n) == uid:
        return n
    return uid


def name(v, what="name"):
    if not isinstance(v, str):
        raise ValueError("%s must be text, not %s" % (what, _cut(v)))
    return _text(v, MAX_NAME, what)


def card(v, what="card"):
    """A card number: an integer, or its decimal digits, from 1 to 2**40-1."""
    if isinstance(v, str) and len(v) > 40:
        raise ValueError("%s must be a decimal card number, not %s" % (what, _cut(v)))
    n = as_int(v)   # text: at most 18 digits, checked before int() runs
    if n is None or isinstance(v, str) and v.strip()[:1] in ("+", "-"):
        raise ValueError("%s must be a decimal card number, not %s" % (what, _cut(v)))
    if not 0 <= n < CARD_LIMIT:
        raise ValueError("%s %s is out of range (1 to 2**40-1)" % (what, _cut(v)))
    if n == 0:
        # A cloud that writes 0 for "no card" would give the user a card
        # anyone can forge: a 26-bit frame of zeros with its parity bit.
        raise ValueError("%s 0 is no card number (send no card instead)" % what)
    return n


def pin(v, what="PIN"):
    """A PIN: 4 to 8 digits, as text (an integer loses leading zeros, so
    only text keeps them; an integer is taken as written)."""
    if is_int(v) and v >= 0:
        v = str(v)
    if not isinstance(v, str) or len(v) > 24:
        raise ValueError("%s must be 4 to 8 digits" % what)
    v = v.strip()
    if not 4 <= len(v) <= 8:
        raise ValueError("%s must be 4 to 8 digits" % what)
    for c in v:
        if not "0" <= c <= "9":
            raise ValueError("%s must be 4 to 8 digits" % what)
    return v


def flag(v, what):
    """Yes/No, true/false, 1/0 (any case) -> bool; anything else refused."""
    if isinstance(v, bool):
        return v
    if is_int(v) and v in (0, 1):
        return v == 1
    if isinstance(v, str) and len(v) <= 8:
        word = v.strip().lower()
        if word in _YES:
            return True
        if word in _NO:
            return False
    raise ValueError("%s must be Yes or No, not %s" % (what, _cut(v)))
