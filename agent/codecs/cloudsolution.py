# Seed 001 HTTP CloudSolution 3.0, device side, sans-IO: functions build
# the request objects (posted as JSON to /api/device-http), parse_reply()
# checks and decodes the server's answer. No sockets; times are converted
# with agent.clock's pure helpers (local wall clock at the site's GMT offset).
#
# Journal records go out in `sendlog`: `logindex` is the first record's
# journal id and record i stands for journal id logindex+i, so a server can
# de-duplicate a resent batch on (sn, logindex+i). That only holds for a run
# of consecutive journal ids, which sendlog() therefore insists on.
from agent.clock import local_iso, parse_iso

# Journal record kinds this protocol carries. Of the events only door
# events travel (as enrollid-0 records); record() returns None for others.
CARRIES = ("punch", "event")

# Door event codes (CloudSolution `event` field with enrollid 0).
DOOR_EVENTS = {
    "door_closed": 0,
    "door_opened": 1,
    "exit_button": 2,
    "door_unlocked": 3,   # opened by software (a cloud/local grant)
    "door_locked": 4,     # closed by software
    "forced_open": 5,
    "tamper": 6,
    "alarm": 7,
}


class ProtocolError(ValueError):
    """A server reply that is not a CloudSolution answer to our request."""


# -- requests -------------------------------------------------------------------

def reg(sn, cpusn, devinfo):
    return {"cmd": "reg", "sn": sn, "cpusn": cpusn, "devinfo": devinfo}


def checklive(sn, time_str):
    return {"cmd": "checklive", "sn": sn, "time": time_str}


def _enrollid(user):
    text = str(user)
    return int(text) if text.isdigit() else text


def record(rec, gmt=0):
    """A journal record [id, epoch, kind, name, value] as a sendlog record,
    or None when this protocol does not carry it. Times are the site's
    wall clock (GMT+gmt hours), as terminals send them."""
    _, t, kind, name, value = rec
    if kind == "punch":
        value = value if isinstance(value, dict) else {}
        user = value.get("user", value.get("user_id", name))
        out = {"enrollid": _enrollid(user),
               "time": value.get("time") or local_iso(t, value.get("gmt", gmt)),
               "mode": 1 if value.get("action") == "FP" else 0,
               "inout": value.get("attend", 0),
               "event": 0}
        if "temp" in value:
            out["temp"] = value["temp"]
        return out
    if kind == "event" and name in DOOR_EVENTS:
        return {"enrollid": 0, "time": local_iso(t, gmt), "mode": 0, "inout": 0,
                "event": DOOR_EVENTS[name]}
    return None


def carries(kind, name):
    """Whether a record of this kind/name is journaled for this protocol."""
    return kind == "punch" or (kind == "event" and name in DOOR_EVENTS)


def carried(rec):
    return record(rec) is not None


def sendlog(sn, records, gmt=0):
    """A sendlog request for journal records with consecutive ids, every
    one carried (see carried()). ValueError otherwise: the caller splits
    its batch there, so logindex+i always names the right journal id."""
    if not records:
        raise ValueError("sendlog needs at least one record")
    first = records[0][0]
    out = []
    for i, rec in enumerate(records):
        if rec[0] != first + i:
            raise ValueError("sendlog records must have consecutive ids: %d follows %d"
                             % (rec[0], first + i - 1))
        r = record(rec, gmt)
        if r is None:
            raise ValueError("journal record %d (%s %s) is not carried by CloudSolution"
                             % (rec[0], rec[2], rec[3]))
        out.append(r)
    return {"cmd": "sendlog", "sn": sn, "count": len(out), "logindex": first, "record": out}


# -- replies ------------------------------------------------------------------------

# Reply fields this codec reads; anything else next to a `cmd` is part of
# a pending server command.
_REPLY_KEYS = ("ret", "result", "reason", "count", "logindex", "cloudtime", "access",
               "nosenduser")


def _int(v):
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, str) and v.isdigit():
        return int(v)
    return None


def _show(obj):
    text = repr(obj)
    return text if len(text) <= 60 else text[:60] + "..."


def parse_reply(obj, cmd, gmt=0):
    """The server's JSON reply to our `cmd` -> a dict: ok, ret, reason,
    count, logindex, cloudtime (epoch seconds or None), access, nosenduser,
    pending_cmd (a server command object or None). ProtocolError when it
    is not an answer to `cmd`. A cloudtime ending in Z is UTC; without
    it, the site's wall clock (GMT+gmt hours)."""
    if not isinstance(obj, dict):
        raise ProtocolError("reply is not a JSON object: %s" % _show(obj))
    pending = None
    if "ret" in obj:
        ret = obj["ret"]
        extra = obj.get("cmd")
        if isinstance(extra, dict):
            pending = extra
        elif isinstance(extra, str) and extra != cmd:
            pending = {k: v for k, v in obj.items() if k not in _REPLY_KEYS}
    else:
        ret = obj.get("cmd")  # some firmware echoes `cmd` instead of `ret`
        if ret is None:
            raise ProtocolError("reply to %s names no command (no 'ret' or 'cmd'): %s"
                                % (cmd, _show(obj)))
    if ret != cmd:
        raise ProtocolError("reply is for %s, expected %s" % (_show(ret), cmd))
    result = obj.get("result")
    if result is None:
        raise ProtocolError("reply to %s has no 'result'" % cmd)
    if result not in (True, False, 0, 1):
        raise ProtocolError("reply to %s has a non-boolean result: %s" % (cmd, _show(result)))
    reason = obj.get("reason")
    nosenduser = obj.get("nosenduser")
    return {
        "ok": bool(result),
        "ret": ret,
        "reason": None if reason is None else str(reason),
        "count": _int(obj.get("count")),
        "logindex": _int(obj.get("logindex")),
        "cloudtime": cloudtime(obj.get("cloudtime"), gmt),
        "access": _int(obj.get("access")),
        "nosenduser": nosenduser if isinstance(nosenduser, bool) else None,
        "pending_cmd": pending,
    }


def acked_upto(reply, first_id, sent_count):
    """The highest journal id a parsed sendlog reply acknowledges, or None.
    A count in the reply acknowledges that many from first_id (never more
    than were sent); a reply echoing another logindex acknowledges nothing."""
    if not reply["ok"] or sent_count < 1:
        return None
    if reply["logindex"] is not None and reply["logindex"] != first_id:
        return None
    n = sent_count if reply["count"] is None else min(reply["count"], sent_count)
    return first_id + n - 1 if n > 0 else None


def cloudtime(text, gmt=0):
    """A reply's cloudtime -> epoch seconds, or None if absent or not a time."""
    if not isinstance(text, str):
        return None
    return parse_iso(text, 0 if text.strip().endswith("Z") else gmt)
