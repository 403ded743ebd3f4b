# CloudSolution's user commands, both ways, sans-IO: the server's words
# (setuserinfo, getuserinfo, deleteuser, enableuser, getuserlist,
# cleanuser) as the Thing's user commands (docs/door-controller.md section
# 5), the device's answers in the protocol's shape, and, for the bench, the
# other way round. Loaded at start on a board with user commands
# (cloudsolution.Session.prepare), else with the first user word.
#
# A user's credentials travel one at a time, numbered by `backupnum`: 0-9
# a fingerprint template, 10 the password (here: the PIN), 11 the card;
# deleteuser also knows 12 (every fingerprint) and 13 (the whole user).
# Fingerprint templates are not taken: a finger is enrolled at the reader
# (its page is the user's `fp`). A PIN is never answered: the device keeps
# only a hash of it.
from agent.codecs import user_fields as uf
from agent.codecs.values import as_int, is_int

PIN, CARD, ALL_FINGERS, WHOLE_USER = 10, 11, 12, 13
PAGE = 16   # users per getuserlist answer
WORDS = {"setuserinfo": "user_set", "getuserinfo": "user_get", "deleteuser": "user_delete",
         "enableuser": "user_enable", "getuserlist": "user_list", "cleanuser": "users_clear"}
# Words whose answer needs the request's context (carried in the Command id
# as (word, context) and echoed by the session).
CONTEXT = ("getuserinfo", "getuserlist")


def _backupnum(obj, known):
    n = obj.get("backupnum")
    if n is None:
        return None
    n = as_int(n)
    if n is None or n not in known:
        raise ValueError("backupnum %s is not one of %s" % (str(obj.get("backupnum"))[:12],
                                                            ", ".join(str(k) for k in known)))
    return n


def request(word, obj):
    """A user word's fields -> (context, Thing command, payload); the
    context is None or what the answer needs. ValueError (the answer's
    reason) when a field cannot be used."""
    name = WORDS[word]
    if word == "cleanuser":
        return None, name, {}
    if word == "getuserlist":
        stn = obj.get("stn", True)
        if not isinstance(stn, bool) and stn not in (0, 1):
            raise ValueError("stn must be true or false")
        return bool(stn), name, {"count": PAGE}
    if "enrollid" not in obj:
        raise ValueError("%s needs an enrollid" % word)
    uid = uf.user_id(obj["enrollid"], "enrollid")
    if word == "getuserinfo":
        return _backupnum(obj, tuple(range(12))), name, {"id": uid}
    if word == "enableuser":
        return None, name, {"id": uid, "enabled": uf.flag(obj.get("enflag"), "enflag")}
    if word == "deleteuser":
        n = _backupnum(obj, tuple(range(14)))
        if n is None or n == WHOLE_USER:
            return None, name, {"id": uid}
        if n == PIN:
            return None, "user_set", {"user": {"id": uid, "pin": None}}
        if n == CARD:
            return None, "user_set", {"user": {"id": uid, "cards": []}}
        return None, "user_set", {"user": {"id": uid, "fp": None}}
    user = {"id": uid}
    if "name" in obj:
        user["name"] = uf.name(obj["name"])
    for key in ("enable", "enflag"):
        if key in obj:
            user["enabled"] = uf.flag(obj[key], key)
    n = _backupnum(obj, tuple(range(12)))
    if n is not None:
        if n < PIN:
            raise ValueError("fingerprint templates cannot be loaded here: enrol the finger at the reader")
        if "record" not in obj:
            raise ValueError("backupnum %d without its record" % n)
        if n == PIN:
            user["pin"] = uf.pin(obj["record"], "record (the password)")
        else:
            user["cards"] = [uf.card(obj["record"], "record (the card)")]
    return None, name, {"user": user}


def user_answer(user, backupnum):
    """getuserinfo's answer fields; ValueError when the credential asked for
    cannot be given."""
    out = {"enrollid": uf.wire_id(user.get("id", "")), "name": user.get("name", ""), "admin": 0,
           "enable": 1 if user.get("enabled", True) else 0}
    if backupnum is None:
        return out
    if backupnum == PIN:
        raise ValueError("the password cannot be read back: the device keeps only a hash of it")
    if backupnum == CARD:
        cards = user.get("cards") or []
        if not cards:
            raise ValueError("user %s has no card" % user.get("id"))
        out["record"] = cards[0]
    else:
        raise ValueError("fingerprint templates are not kept by this device")
    out["backupnum"] = backupnum
    return out


def list_records(users):
    """One getuserlist record per credential a user has (the protocol's
    way); a user without any still gets one, without backupnum."""
    out = []
    for user in users:
        if not isinstance(user, dict):
            continue
        base = {"enrollid": uf.wire_id(user.get("id", "")), "admin": 0}
        kinds = []
        if user.get("fp") is not None:
            kinds.append(0)
        if user.get("pin"):
            kinds.append(PIN)
        if user.get("cards"):
            kinds.append(CARD)
        if not kinds:
            out.append(base)
        for n in kinds:
            rec = dict(base)
            rec["backupnum"] = n
            out.append(rec)
    return out


# -- the server's side (the bench) ---------------------------------------------

def _read_id(v):
    try:
        return uf.user_id(v, "enrollid")
    except ValueError:
        return None


def read_answer(word, msg):
    """A device's getuserinfo / getuserlist answer -> {"user": USER} or
    {"users": [USER], "more": bool}, users as user_get answers them (as
    far as the answer tells: a list names ids and credentials only)."""
    if word == "getuserinfo":
        uid = _read_id(msg.get("enrollid"))
        if uid is None:
            return {}
        user = {"id": uid, "name": msg.get("name", ""), "enabled": msg.get("enable", 1) not in (0, False)}
        if msg.get("backupnum") == CARD and is_int(msg.get("record")):
            user["cards"] = [msg["record"]]
        return {"user": user}
    users = {}
    order = []
    recs = msg.get("record")
    for rec in recs if isinstance(recs, list) else []:
        uid = _read_id(rec.get("enrollid")) if isinstance(rec, dict) else None
        if uid is None:
            continue
        if uid not in users:
            users[uid] = {"id": uid, "credentials": []}
            order.append(uid)
        n = rec.get("backupnum")
        if is_int(n):
            users[uid]["credentials"].append("pin" if n == PIN else "card" if n == CARD else "fingerprint")
    return {"users": [users[u] for u in order], "more": bool(order)}


def server_command(name, payload):
    """The server command object that asks a device to run Thing command
    `name` (a user command), or None when CloudSolution cannot say it;
    ValueError (naming the field) for a value no device could read."""
    if name == "users_clear":
        return {"cmd": "cleanuser"}
    if name == "user_list":
        # stn false: the device continues after the last page it gave.
        return {"cmd": "getuserlist", "stn": payload.get("after") is None}
    uid = payload.get("id")
    if name == "user_set":
        user = payload.get("user")
        users = payload.get("users")
        if user is None and isinstance(users, list) and len(users) == 1:
            user = users[0]
        if not isinstance(user, dict):
            return None   # one user per setuserinfo
        uid = user.get("id")
    if uid is None:
        return None
    out = {"enrollid": uf.wire_id(uf.user_id(uid))}
    if name == "user_get":
        out["cmd"] = "getuserinfo"
        n = payload.get("backupnum")
        if is_int(n):
            out["backupnum"] = n
        return out
    if name == "user_delete":
        out["cmd"] = "deleteuser"
        out["backupnum"] = WHOLE_USER
        return out
    if name == "user_enable":
        out["cmd"] = "enableuser"
        out["enflag"] = 1 if uf.flag(payload.get("enabled"), "enabled") else 0
        return out
    if name != "user_set":
        return None
    out["cmd"] = "setuserinfo"
    for key in user:
        if key not in ("id", "name", "enabled", "cards", "pin"):
            return None   # valid dates, schedules, doors: no setuserinfo field holds them
    if "name" in user:
        out["name"] = uf.name(user["name"])
    if "enabled" in user:
        out["enable"] = 1 if uf.flag(user["enabled"], "enabled") else 0
    cards = user.get("cards") or []
    pin = user.get("pin")
    if len(cards) > 1 or (cards and pin is not None) or user.get("cards") == [] or "pin" in user and pin is None:
        return None   # one credential per setuserinfo (removal: user_delete)
    out["admin"] = 0
    if cards:
        out["backupnum"] = CARD
        out["record"] = uf.card(cards[0])
    elif pin is not None:
        out["backupnum"] = PIN
        out["record"] = uf.pin(pin)
    return out
