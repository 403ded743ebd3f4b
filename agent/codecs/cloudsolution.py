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
from agent.codecs.session import Command, RemoteProtocolError
from agent.codecs.session import Session as _Session
from agent.codecs.values import as_int, epoch_wall, is_int, parse_stamp, wall_epoch, wall_text

PATH = "/api/device-http"

# Door event codes (records with enrollid 0 and `event`).
DOOR_EVENTS = {"door_closed": 0, "door_opened": 1, "exit_button": 2, "door_unlocked": 3,
               "door_locked": 4, "forced_open": 5, "tamper": 6, "alarm": 7}

# Server command word -> the Thing command it runs. Words not here are
# answered `result: false` (not supported), so the server stops waiting.
SERVER_COMMANDS = {"opendoor": "unlock", "settime": "set_time", "gettime": "get_time",
                   "getnewlog": "resend", "reboot": "reboot"}

# Reply fields this codec reads; anything else next to a command word is
# part of the server command.
_REPLY_KEYS = ("ret", "result", "reason", "count", "logindex", "cloudtime", "access", "nosenduser")

Reply = namedtuple("Reply", ("ok", "reason", "count", "logindex", "cloudtime", "access", "nosenduser",
                             "command"))


class Session(_Session):
    """Carries punches and door events (as enrollid-0 records)."""
    __slots__ = ("sn", "gmt", "devinfo", "token")
    CARRIES = (records.PUNCH, records.EVENT)

    def __init__(self, sn, gmt=0, devinfo=None, token=None):
        _Session.__init__(self)
        self.sn = sn
        self.gmt = gmt
        self.devinfo = devinfo or {}
        self.token = token

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
        """The device's answer to server command `cmd_id` (the command word):
        {"ret": word, "sn", "result", "reason" on failure, scalar results}."""
        self.require("command_result()")
        out = self._signed({"ret": cmd_id, "sn": self.sn, "result": bool(ok)})
        if not ok:
            out["reason"] = str(error or "failed")
        elif isinstance(result, dict):
            for key in result:
                value = result[key]
                if key not in out and isinstance(value, (str, int, float, bool)):
                    out[key] = value
        return out

    # -- replies ----------------------------------------------------------------
    def reply(self, cmd, obj):
        """The server's JSON reply to our request `cmd` -> a Reply.
        RemoteProtocolError when it is not an answer to `cmd`. A reply that
        accepts `reg` registers the session."""
        r = parse_reply(obj, cmd, self.gmt)
        if cmd == "reg" and r.ok:
            self.accepted()
        return r


def record(rec, gmt=0):
    """A journal record as a sendlog record, or None when this protocol does
    not carry it. Times are the site's wall clock (GMT+gmt hours), as
    terminals send them."""
    t, kind, name, value = rec[records.TIME], records.kind(rec), rec[records.NAME], rec[records.VALUE]
    if kind == records.PUNCH:
        value = value if isinstance(value, dict) else {}
        user = str(value.get(records.USER, name))
        n = as_int(user)
        out = {"enrollid": n if n is not None and n >= 0 else user,
               "time": value.get(records.WHEN) or epoch_wall(t, value.get(records.GMT, gmt)),
               "mode": 1 if value.get(records.ACTION) == "FP" else 0,
               "inout": value.get(records.ATTEND, records.IN),
               "event": 0}
        if "temp" in value:
            out["temp"] = value["temp"]
        return out
    if kind == records.EVENT and name in DOOR_EVENTS:
        return {"enrollid": 0, "time": epoch_wall(t, gmt), "mode": 0, "inout": 0, "event": DOOR_EVENTS[name]}
    return None


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


def server_command(obj, gmt=0):
    """A server command object -> a Command (id: the word, to echo in the
    answer; name: the Thing command, None when unsupported)."""
    word = obj.get("cmd")
    if not isinstance(word, str) or not word or len(word) > 32:
        word = "?"   # echoed in the answer: a word the protocol could have sent
    name = SERVER_COMMANDS.get(word)
    payload = {}
    if name == "unlock":
        payload[records.SOURCE] = "cloud"
    elif name == "set_time":
        t = cloudtime(obj.get("cloudtime") or obj.get("time"), gmt)
        if t is None:
            return Command(word, None, {"error": "settime without a readable cloudtime"})
        payload["epoch"] = t
    return Command(word, name, payload)


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

def command_request(name, payload):
    """The server command object that asks a device to run Thing command
    `name`, or None when CloudSolution has no word for it."""
    for word in SERVER_COMMANDS:
        if SERVER_COMMANDS[word] == name:
            out = {"cmd": word}
            if name == "unlock":
                out["doornum"] = 1
            elif name == "set_time":
                # An instant (epoch, or a time with a zone) goes as UTC with
                # a Z, which devices honour; a bare wall-clock time as it is.
                epoch = payload.get("epoch")
                if is_int(epoch) and not records.plausible_time(epoch):
                    return None
                if not is_int(epoch):
                    epoch = wall_epoch(payload.get("time"), 0, trust_zone=True)
                    got = parse_stamp(payload.get("time"))
                    if got is None:
                        return None
                    if got[1] is None:
                        out["cloudtime"] = wall_text(got[0])
                        return out
                out["cloudtime"] = epoch_wall(epoch) + "Z"
            elif name == "resend":
                out["stn"] = True
            return out
    return None


def door_event_name(code):
    """enrollid-0 record `event` code -> door event type, or None."""
    for name in DOOR_EVENTS:
        if DOOR_EVENTS[name] == code:
            return name
    return None
