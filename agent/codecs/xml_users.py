# The XML biometric protocol's user operations, both ways, sans-IO: a
# terminal's requests (SetUserData, GetUserData, DeleteUser,
# GetFirstUserData / GetNextUserData, EmptyUserEnrollmentData) as the
# Thing's user commands (docs/door-controller.md section 5), the answers
# as the tags vendor servers read, and, for the bench, the other way round.
# Loaded at start on a board with user commands (xml_bio.Session.prepare),
# else with the first user operation: a terminal without users never holds it.
#
# Tags are the vendor's (SmackBio / ZK cloud firmware): UserID, Name,
# Privilege, Enabled Yes/No, Card, PWD, UserPeriod_Used Yes/No,
# UserPeriod_Start, UserPeriod_End. Also read: UserId (the spelling of the
# log requests) and Password. A tag that is absent keeps what the device
# has; one that is present and empty removes it (Card, PWD). Times follow
# SetTime's rule: an explicit +hh:mm names an instant, anything else is the
# site's wall clock (terminals write local time, with or without a Z).
from agent import records
from agent.codecs import user_fields as uf
from agent.codecs.values import epoch_wall, fields_epoch, parse_stamp

LIST_OPS = ("GetFirstUserData", "GetNextUserData")


def _uid(f):
    uid = f.get("UserID")
    if uid is None:
        uid = f.get("UserId")
    if uid is None:
        raise ValueError("no UserID")
    return uf.user_id(uid, "UserID")


def _time(f, tag, gmt):
    raw = f.get(tag, "")
    got = parse_stamp(raw) if len(raw) <= 64 else None
    if got is None:
        raise ValueError("%s is not a readable time" % tag)
    if got[1] is not None and raw.strip()[-1:] not in ("Z", "z"):
        return fields_epoch(got[0], got[1])
    return fields_epoch(got[0], gmt)


def request(op, f, gmt):
    """A user Operation's tags -> (Thing command, payload); ValueError
    (the answer's Reason) when a tag cannot be used."""
    if op == "EmptyUserEnrollmentData":
        return "users_clear", {}
    if op == "GetFirstUserData":
        return "user_list", {"count": 1}
    if op == "GetNextUserData":
        # doorlink's extension: a UserID says where to continue (the
        # session's own cursor otherwise, see xml_bio.Session).
        if "UserID" in f or "UserId" in f:
            return "user_list", {"count": 1, "after": _uid(f)}
        return "user_list", {"count": 1}
    uid = _uid(f)
    if op == "GetUserData":
        return "user_get", {"id": uid}
    if op == "DeleteUser":
        return "user_delete", {"id": uid}
    user = {"id": uid}
    if "Name" in f:
        user["name"] = uf.name(f["Name"], "Name")
    if "Enabled" in f:
        user["enabled"] = uf.flag(f["Enabled"], "Enabled")
    if "Card" in f:
        user["cards"] = [uf.card(f["Card"], "Card")] if f["Card"].strip() else []
    for tag in ("PWD", "Password"):
        if tag in f:
            user["pin"] = uf.pin(f[tag], tag) if f[tag].strip() else None
    if "UserPeriod_Used" in f:
        used = uf.flag(f["UserPeriod_Used"], "UserPeriod_Used")
        user["from"] = _time(f, "UserPeriod_Start", gmt) if used and "UserPeriod_Start" in f else None
        user["until"] = _time(f, "UserPeriod_End", gmt) if used and "UserPeriod_End" in f else None
        if used and user["from"] is None and user["until"] is None:
            raise ValueError("UserPeriod_Used is Yes without UserPeriod_Start or UserPeriod_End")
    return "user_set", {"user": user}


def _yes(b):
    return "Yes" if b else "No"


def user_tags(user, gmt):
    """A user (as user_get answers it) as GetUserData's tags. Its PIN is
    never among them: the device keeps none to give."""
    out = [("UserID", user.get("id", "")), ("Name", user.get("name", "")),
           ("Enabled", _yes(user.get("enabled", True)))]
    cards = user.get("cards") or []
    if cards:
        out.append(("Card", str(cards[0])))
    start, end = user.get("from"), user.get("until")
    out.append(("UserPeriod_Used", _yes(start is not None or end is not None)))
    if start is not None:
        out.append(("UserPeriod_Start", epoch_wall(start, gmt)))
    if end is not None:
        out.append(("UserPeriod_End", epoch_wall(end, gmt)))
    return out


def answer_tags(name, result, gmt):
    """The tags of a successful user_get / user_list answer."""
    if name == "user_get":
        return user_tags(uf.user_of(result), gmt)
    users = result.get("users") or []
    if not users:
        return [("More", "No")]
    return user_tags(users[0], gmt) + [("More", _yes(result.get("more")))]


# -- the server's side (the bench) ---------------------------------------------

def read_answer(f):
    """A GetUserData / Get*UserData answer's tags -> {"user": USER} (with
    "more" for a list), the user as user_get answers it; the times stay
    out (the terminal writes its own wall clock, whose zone the server may
    not know: the tags themselves carry them)."""
    out = {}
    if "More" in f:
        out["more"] = f["More"].strip().lower() == "yes"
    if "UserID" not in f:
        return out
    user = {"id": f["UserID"], "name": f.get("Name", ""),
            "enabled": f.get("Enabled", "Yes").strip().lower() != "no", "cards": []}
    if f.get("Card", "").strip():
        try:
            user["cards"] = [uf.card(f["Card"])]
        except ValueError:
            pass   # the raw tag is there for whoever can read it
    out["user"] = user
    return out


def server_fields(command, payload):
    """The tags after Operation that ask a terminal to run `command`, or
    None when the protocol cannot say it."""
    if command in ("user_get", "user_delete"):
        uid = payload.get("id")
        return None if uid is None else [("UserID", uf.user_id(uid))]
    if command == "user_list":
        after = payload.get("after")
        return [] if after is None else [("UserID", uf.user_id(after))]
    if command == "users_clear":
        return []
    if command != "user_set":
        return None
    user = payload.get("user")
    users = payload.get("users")
    if user is None and isinstance(users, list) and len(users) == 1:
        user = users[0]
    if not isinstance(user, dict) or "id" not in user:
        return None   # one user per SetUserData
    for key in user:
        if key not in ("id", "name", "enabled", "cards", "pin", "from", "until"):
            return None   # schedules, doors, a fingerprint page: no SetUserData tag holds them
    out = [("UserID", uf.user_id(user["id"]))]
    if "name" in user:
        out.append(("Name", uf.name(user["name"])))
    if "enabled" in user:
        out.append(("Enabled", _yes(uf.flag(user["enabled"], "enabled"))))
    if "cards" in user:
        cards = user["cards"] or []
        if len(cards) > 1:
            return None   # one Card per user in this protocol
        out.append(("Card", str(uf.card(cards[0])) if cards else ""))
    if "pin" in user:
        out.append(("PWD", "" if user["pin"] is None else uf.pin(user["pin"])))
    if "from" in user or "until" in user:
        start, end = user.get("from"), user.get("until")
        out.append(("UserPeriod_Used", _yes(start is not None or end is not None)))
        for tag, t in (("UserPeriod_Start", start), ("UserPeriod_End", end)):
            if t is not None:
                if not records.plausible_time(t):
                    return None
                out.append((tag, epoch_wall(t) + "+00:00"))
    return out
