# CloudSolution 3.0 over HTTP, device side, sans-IO: a Session builds the
# request objects (posted as JSON to /api/device-http) and reads the
# server's answers (reply()). No sockets, no clocks: times are converted
# with agent.codecs.values (local wall clock at the site's GMT offset).
#
# Journal records go out in `sendlog`: `logindex` is the first record's
# journal id and record i stands for journal id logindex+i, so a server can
# de-duplicate a resent batch on (sn, logindex+i). That only holds for a run
# of consecutive journal ids, which sendlog() therefore insists on.
#
# Every request carries the site's token beside `sn` (`"token"`), so the
# server can tell the device from anyone who knows its serial number; the
# protocol's own devices send none (Session without a token).
#
# A reply may carry a server command (`"cmd": {...}`, or its fields beside
# the reply's own); reply() hands it over as a Command whose id is the
# command word, which command_result() echoes as `ret` in the device's
# answer. What each word means here: docs/protocols/cloudsolution-http.md.
from collections import namedtuple

from agent import records
from agent.codecs import cs_commands
from agent.codecs.session import RemoteProtocolError
from agent.codecs.session import Session as _Session
from agent.codecs.values import as_int, epoch_wall, wall_epoch

PATH = "/api/device-http"

# Door event codes (records with enrollid 0 and `event`): 0 closed, 1
# opened, 2 exit button, 3 opened by software, 4 closed by software, 5
# illegal (forced) open, 6 tamper, 7 input alarm (here: held open). Door
# events with no code (access_denied, alarm_cleared, door_mode) are not
# carried by this protocol.
DOOR_EVENTS = {records.DOOR_CLOSED: 0, records.DOOR_OPENED: 1, records.REX: 2, records.UNLOCKED: 3,
               records.LOCKED: 4, records.DOOR_FORCED: 5, records.DOOR_TAMPER: 6, records.DOOR_HELD_OPEN: 7}

# Reply fields this codec reads; anything else next to a command word is
# part of the server command.
_REPLY_KEYS = ("ret", "result", "reason", "count", "logindex", "cloudtime", "access", "nosenduser")

Reply = namedtuple("Reply", ("ok", "reason", "count", "logindex", "cloudtime", "access", "nosenduser",
                             "command"))


class Session(_Session):
    """Carries punches and door events (as enrollid-0 records)."""
    __slots__ = ("sn", "gmt", "devinfo", "token", "_listed")
    CARRIES = (records.PUNCH, records.EVENT)

    def __init__(self, sn, gmt=0, devinfo=None, token=None):
        _Session.__init__(self)
        self.sn = sn
        self.gmt = gmt
        self.devinfo = devinfo or {}
        self.token = token
        self._listed = (None, 0)   # getuserlist: last user id given, users given

    def _signed(self, out):
        if self.token:
            out["token"] = self.token
        return out

    def carries(self, kind, name):
        return kind == records.PUNCH or (kind == records.EVENT and name in DOOR_EVENTS)

    # -- requests -------------------------------------------------------------
    def hello(self):
        self.open()
        return self._signed({"cmd": "reg", "sn": self.sn, "cpusn": self.sn, "devinfo": self.devinfo})

    def ping(self, now):
        """checklive, with the device's local wall clock (epoch `now`)."""
        self.require("ping()")
        return self._signed({"cmd": "checklive", "sn": self.sn, "time": epoch_wall(now, self.gmt)})

    def sendlog(self, recs):
        """A sendlog request for journal records with consecutive ids, every
        one carried. ValueError otherwise: the caller splits its batch there,
        so logindex+i always names the right journal id."""
        self.require("sendlog()")
        if not recs:
            raise ValueError("sendlog needs at least one record")
        first = recs[0][records.ID]
        out = []
        for i, rec in enumerate(recs):
            if rec[records.ID] != first + i:
                raise ValueError("sendlog records must have consecutive ids: %d follows %d"
                                 % (rec[records.ID], first + i - 1))
            r = record(rec, self.gmt)
            if r is None:
                raise ValueError("journal record %d (%s %s) is not carried by CloudSolution"
                                 % (rec[records.ID], records.kind(rec), rec[records.NAME]))
            out.append(r)
        return self._signed({"cmd": "sendlog", "sn": self.sn, "count": len(out), "logindex": first, "record": out})

    def command_result(self, cmd_id, name, ok, result=None, error=None):
        """The device's answer to server command `cmd_id` (the command word,
        or (word, context) for a word whose answer needs its request):
        {"ret": word, "sn", "result", "reason" on failure, scalar results}."""
        self.require("command_result()")
        context = None
        if isinstance(cmd_id, tuple):
            cmd_id, context = cmd_id
        out = self._signed({"ret": cmd_id, "sn": self.sn, "result": bool(ok)})
        if ok and isinstance(result, dict) and cmd_id in ("getuserinfo", "getuserlist", "setdevlock"):
            try:
                fields, self._listed = cs_commands.answer(cmd_id, context, result, self._listed)
                out.update(fields)
                return out
            except ValueError as e:
                ok, error = False, str(e)
                out["result"] = False
        if not ok:
            out["reason"] = str(error or "failed")
        elif isinstance(result, dict):
            for key in result:
                value = result[key]
                # log_tail's lines are a list: the one answer that needs one.
                if key not in out and (isinstance(value, (str, int, float, bool)) or name == "log_tail"):
                    out[key] = value
        return out

    def prepare(self, commands):
        if "user_set" in commands:
            from agent.codecs import cs_users  # noqa: F401 - see session.Session.prepare

    # -- replies ----------------------------------------------------------------
    def reply(self, cmd, obj):
        """The server's JSON reply to our request `cmd` -> a Reply.
        RemoteProtocolError when it is not an answer to `cmd`. A reply that
        accepts `reg` registers the session."""
        r = parse_reply(obj, cmd, self.gmt)
        if cmd == "reg" and r.ok:
            self.accepted()
            self._listed = (None, 0)
        c = r.command
        if c is not None and c.name == "user_list":
            # stn true starts the list again; false continues after the
            # last user given (on this link, since registration).
            if c.id[1]:
                self._listed = (None, 0)
            elif self._listed[0] is not None:
                c.payload["after"] = self._listed[0]
        return r


def record(rec, gmt=0):
    """A journal record as a sendlog record, or None when this protocol does
    not carry it. Times are the site's wall clock (GMT+gmt hours), as
    terminals send them."""
    t, kind, name, value = rec[records.TIME], records.kind(rec), rec[records.NAME], rec[records.VALUE]
    if kind == records.PUNCH:
        value = value if isinstance(value, dict) else {}
        out = {"enrollid": _enrollid(str(value.get(records.USER, name))),
               "time": value.get(records.WHEN) or epoch_wall(t, value.get(records.GMT, gmt)),
               "mode": 1 if value.get(records.ACTION) == "FP" else 0,
               "inout": value.get(records.ATTEND, records.IN),
               "event": 0}
        if "temp" in value:
            out["temp"] = value["temp"]
        return out
    if kind == records.EVENT and name in DOOR_EVENTS:
        user = value.get(records.USER) if name == records.UNLOCKED and isinstance(value, dict) else None
        if user is not None:
            # A grant to a user travels as that user's punch: the field's
            # servers know who came in from user records, not door codes.
            return {"enrollid": _enrollid(str(user)), "time": epoch_wall(t, gmt),
                    "mode": 1 if value.get(records.SOURCE) == "fingerprint" else 0, "inout": records.IN, "event": 0}
        return {"enrollid": 0, "time": epoch_wall(t, gmt), "mode": 0, "inout": 0, "event": DOOR_EVENTS[name]}
    return None


def _enrollid(user):
    # enrollid 0 is a door's: a user "0" goes as text, never as a door event.
    n = as_int(user)
    return n if n is not None and n > 0 and str(n) == user else user


def _show(obj):
    text = repr(obj)
    return text if len(text) <= 60 else text[:60] + "..."


def parse_reply(obj, cmd, gmt=0):
    """The server's JSON reply to `cmd` -> a Reply (see Session.reply). A
    cloudtime with a zone (Z, +08:00) is read in it; without one, as the
    site's wall clock (GMT+gmt hours)."""
    if not isinstance(obj, dict):
        raise RemoteProtocolError("reply is not a JSON object: %s" % _show(obj))
    pending = None
    if "ret" in obj:
        ret = obj["ret"]
        extra = obj.get("cmd")
        if isinstance(extra, dict):
            pending = extra
        elif isinstance(extra, str) and extra != cmd:
            # Flat: the command's fields beside the reply's. A settime's
            # time is the reply's own cloudtime then.
            pending = {}
            for k in obj:
                if k not in _REPLY_KEYS or k == "cloudtime":
                    pending[k] = obj[k]
    else:
        ret = obj.get("cmd")  # some firmware echoes `cmd` instead of `ret`
        if ret is None:
            raise RemoteProtocolError("reply to %s names no command (no 'ret' or 'cmd'): %s" % (cmd, _show(obj)))
    if ret != cmd:
        raise RemoteProtocolError("reply is for %s, expected %s" % (_show(ret), cmd))
    result = obj.get("result")
    if result is None:
        raise RemoteProtocolError("reply to %s has no 'result'" % cmd)
    if result not in (True, False, 0, 1):
        raise RemoteProtocolError("reply to %s has a non-boolean result: %s" % (cmd, _show(result)))
    reason = obj.get("reason")
    nosenduser = obj.get("nosenduser")
    return Reply(bool(result), None if reason is None else str(reason), _number(obj, "count", cmd),
                 _number(obj, "logindex", cmd), cloudtime(obj.get("cloudtime"), gmt), as_int(obj.get("access")),
                 nosenduser if isinstance(nosenduser, bool) else None,
                 None if pending is None else server_command(pending, gmt))


def _number(obj, key, cmd):
    """The reply's count or logindex: None only when there is none. One that
    cannot be read is the server's garbage, never "absent": a count read as
    "all taken", or a logindex whose check is skipped, would drop records
    the server did not store."""
    if key not in obj or obj[key] is None:
        return None
    v = obj[key]
    if isinstance(v, float) and 0 <= v < 1e9 and v == int(v):
        return int(v)
    n = as_int(v)
    if n is None or n < 0:
        raise RemoteProtocolError("reply to %s has an unreadable %s: %s" % (cmd, key, _show(v)))
    return n


server_command = cs_commands.server_command   # a server command object -> a Command


def acked_upto(reply, first_id, sent_count):
    """The highest journal id a sendlog Reply acknowledges, or None. A
    count acknowledges that many from first_id (never more than were sent);
    a reply echoing another logindex acknowledges nothing."""
    if not reply.ok or sent_count < 1:
        return None
    if reply.logindex is not None and reply.logindex != first_id:
        return None
    n = sent_count if reply.count is None else min(reply.count, sent_count)
    return first_id + n - 1 if n > 0 else None


def cloudtime(text, gmt=0):
    """A cloudtime -> epoch seconds, or None if absent or not a time."""
    return wall_epoch(text, gmt, trust_zone=True)


# -- the server's side (the bench): the same tables, the other way round --------

command_request = cs_commands.command_request   # the bench's side, with the same tables


def door_event_name(code):
    """enrollid-0 record `event` code -> door event type, or None."""
    for name in DOOR_EVENTS:
        if DOOR_EVENTS[name] == code:
            return name
    return None
