# Seed 001 XML biometric protocol (SmackBio / ZK-compatible terminals),
# device side, sans-IO: the same Session interface and events as
# codecs.json_ws, so the one WebSocket uplink drives either.
#
# Wire shape: the seed's <Request><Operation>X</Operation>...</Request> and
# <Response><Result>...</Result>...</Response>. Vendor firmware also speaks
# <Message><Request>X</Request>...</Message> / <Message><Response>X</Response>
# ...</Message> with TransID for the log id; both shapes are read, the
# seed's is written. A seed Response names no operation, so what it answers
# is inferred: a Session means Register, a LogId/TransID means a log.
#
# Every log is acknowledged (Result success/OK echoing its id), so acks are
# always on. The uplink's acks are cumulative; a log the server refused
# (Result Fail) must stay in the journal, so later acks are held below it
# until the next hello(), after which everything unacknowledged is resent.
from agent.codecs import xml_flat
from agent.codecs.session import (
    REGISTERED, ACK, AUTH_FAILED, REREGISTER, SERVER_ERROR, COMMAND, BAD_INPUT, NOTHING)

# Journal record kinds this protocol carries.
CARRIES = ("punch", "admin")


def carries(kind, name):
    return kind in CARRIES

TERMINAL_TYPE = "doorlink"
_LOGS = ("TimeLog_v2", "AdminLog_v2")
# LockControl modes (vendor numbering); 1 and 2 are the Thing's own commands.
_LOCK_MODES = {"forceopen": 1, "forceclose": 2, "normalopen": 3, "autorecover": 4,
               "restart": 5, "cancelwarning": 6}
# Our command name -> the Operation its result answers.
_RESULT_OPS = {"unlock": "LockControl", "lock": "LockControl", "lock_control": "LockControl",
               "status": "GetDeviceStatus", "set_time": "SetTime"}


class Session:
    __slots__ = ("serial", "cloud_id", "max_frame", "gmt", "session", "registered", "_hold", "_acked")

    def __init__(self, device_serial, cloud_id, max_frame=16384, gmt=0):
        self.serial = device_serial
        self.cloud_id = cloud_id
        self.max_frame = max_frame
        self.gmt = gmt
        self.session = None     # the server's session token, once registered
        self.registered = False
        self._hold = None       # lowest log id the server refused on this link
        self._acked = 0         # highest log id acknowledged on this link

    # -- outgoing -------------------------------------------------------------
    def hello(self):
        self.registered = False
        self.session = None
        self._hold = None
        self._acked = 0
        return _request("Register", [("DeviceSerialNo", self.serial), ("CloudId", self.cloud_id),
                                     ("TerminalType", TERMINAL_TYPE)])

    def record(self, rec):
        """A journal record [id, time, kind, name, value] as a TimeLog_v2 or
        AdminLog_v2 request; None for a kind this protocol cannot carry.
        A punch/admin record without its user or time raises ValueError."""
        rid, _t, kind, _name, value = rec
        if kind not in CARRIES:
            return None
        if not isinstance(value, dict):
            raise ValueError("record %s: value must be an object, not %s" % (rid, type(value).__name__))
        if kind == "punch":
            fields = [("LogId", str(rid)), ("UserId", _need(value, "user", rid)),
                      ("PunchTime", _need(value, "time", rid)), ("GMT", value.get("gmt", self.gmt)),
                      ("AttendStat", value.get("attend", 0)), ("APStat", value.get("ap", 1)),
                      ("Action", value.get("action", "FP")), ("JobCode", value.get("job", 0))]
            for key, tag in (("photo", "Photo"), ("lat", "Latitude"), ("lon", "Longitude")):
                if key in value:
                    fields.append((tag, value[key]))
            return _request("TimeLog_v2", fields)
        return _request("AdminLog_v2", [
            ("LogId", str(rid)), ("AdminId", value.get("admin", "ADMIN")),
            ("UserId", _need(value, "user", rid)), ("Action", _need(value, "action", rid)),
            ("Time", _need(value, "time", rid))])

    def ping(self):
        return _request("KeepAlive", [])

    def command_result(self, cmd_id, name, ok, result=None, error=None):
        """The Response to a server command: its Operation echoed, TransID
        when the command had one, Result success/Fail, and for a failure its
        Reason. Scalar result values travel as tags of their own."""
        fields = [("Operation", _RESULT_OPS.get(name, "Command"))]
        if cmd_id is not None:
            fields.append(("TransID", str(cmd_id)))
        fields.append(("Result", "success" if ok else "Fail"))
        if not ok:
            fields.append(("Reason", str(error or "failed")))
        elif isinstance(result, dict):
            for key in sorted(result):
                value = result[key]
                if isinstance(value, bool):
                    value = 1 if value else 0
                if xml_flat.is_name(key) and isinstance(value, (str, int, float)):
                    fields.append((key, value))
        return xml_flat.encode("Response", fields)

    # -- incoming -------------------------------------------------------------
    def receive(self, text):
        """One message from the cloud -> a tuple (event, ...)."""
        if not isinstance(text, str):
            return (BAD_INPUT, "bad_frame", "binary frame ignored (protocol is XML text)")
        if len(text) > self.max_frame:
            return (BAD_INPUT, "oversized_frame",
                    "message of %d bytes over the %d byte limit ignored" % (len(text), self.max_frame))
        try:
            root, f = xml_flat.decode(text, self.max_frame)
        except xml_flat.XmlError as e:
            return (BAD_INPUT, "bad_xml", "malformed XML ignored: %s" % e)
        if root == "Message":  # vendor shape: the operation is the child's text
            if "Response" in f:
                return self._response(f.get("Response"), f)
            if "Request" in f:
                return self._request(f.get("Request"), f)
        elif root == "Response":
            return self._response(f.get("Operation"), f)
        elif root == "Request":
            return self._request(f.get("Operation"), f)
        return (BAD_INPUT, "unknown_operation", "XML message <%s> is neither a Request nor a Response" % root)

    def _response(self, op, f):
        result = f.get("Result", "").lower()  # vendor spellings: success, OK, Fail...
        ok = result in ("success", "ok")
        reason = f.get("Reason") or f.get("Result") or "no reason given"
        if not op:
            op = _infer_op(f, self.registered)
        if "Result" not in f:
            if op == "KeepAlive":
                return (NOTHING,)  # any answer proves the link
            return (BAD_INPUT, "bad_message", "%s response without <Result> ignored" % op)
        if op == "Register":
            if not ok:
                return (AUTH_FAILED, reason)
            self.registered = True
            self.session = f.get("Session") or None
            return (REGISTERED, True)
        if _unknown_session(result, reason):
            return (REREGISTER, reason)
        if op in _LOGS:
            rid = _int(f.get("LogId") or f.get("TransID"))
            if not ok:
                # Without a readable id, the refused log is the oldest one
                # unacknowledged (answers come in order).
                refused = rid if rid is not None else self._acked + 1
                if self._hold is None or refused < self._hold:
                    self._hold = refused
                return (SERVER_ERROR, "%s %s refused: %s (kept, resent on reconnect)"
                        % (op, f.get("LogId") or f.get("TransID") or "?", reason))
            if rid is None or rid < 1:
                return (BAD_INPUT, "bad_ack", "%s response without a numeric LogId ignored" % op)
            if self._hold is not None and rid >= self._hold:
                # Acks are cumulative: acknowledging past a refused log would drop it.
                rid = self._hold - 1
                if rid < 1:
                    return (NOTHING,)
            self._acked = max(self._acked, rid)
            return (ACK, rid)
        if op == "KeepAlive" or op in _RESULT_OPS.values():
            return (NOTHING,) if ok else (SERVER_ERROR, "%s failed: %s" % (op, reason))
        return (BAD_INPUT, "unknown_operation", "response to unknown operation %r ignored" % (op,))

    def _request(self, op, f):
        cmd_id = f.get("TransID") or None
        if op == "LockControl":
            mode = f.get("Mode", "")
            n = _LOCK_MODES.get(mode.lower()) or _int(mode)
            if n is None:
                return (BAD_INPUT, "bad_command", "LockControl without a valid Mode (%r) ignored" % mode)
            if n == 1:
                return (COMMAND, cmd_id, "unlock", {})
            if n == 2:
                return (COMMAND, cmd_id, "lock", {})
            return (COMMAND, cmd_id, "lock_control", {"mode": n})
        if op == "GetDeviceStatus":
            return (COMMAND, cmd_id, "status", {})
        if op == "SetTime":
            t = wall_time(f.get("Time") or f.get("DevTime") or f.get("ServerTime") or "")
            if t is None:
                return (BAD_INPUT, "bad_command", "SetTime without a readable Time ignored")
            return (COMMAND, cmd_id, "set_time", {"time": t})
        return (BAD_INPUT, "unknown_operation", "request with unknown operation %r ignored" % (op,))


def wall_time(text):
    """A vendor time stamp -> "YYYY-MM-DDTHH:MM:SS", or None. Read leniently:
    the first six numbers count, whatever separates them, so
    "2013-05-06-T11:09:30Z" and "2026-05-12 09:15:30" both work (the Z is
    ignored: terminals write local wall-clock time despite it)."""
    nums = []
    cur = ""
    for c in text + " ":
        if "0" <= c <= "9":
            cur += c
        elif cur:
            nums.append(cur)
            cur = ""
    if len(nums) == 1 and len(nums[0]) == 14:  # compact YYYYMMDDHHMMSS
        d = nums[0]
        nums = [d[:4], d[4:6], d[6:8], d[8:10], d[10:12], d[12:]]
    if len(nums) < 6:
        return None
    y, mo, d, h, mi, s = [int(n) for n in nums[:6]]
    if not (1970 <= y <= 9999 and 1 <= mo <= 12 and 1 <= d <= 31 and h <= 23 and mi <= 59 and s <= 60):
        return None
    return "%04d-%02d-%02dT%02d:%02d:%02d" % (y, mo, d, h, mi, s)


def _request(op, fields):
    return xml_flat.encode("Request", [("Operation", op)] + fields)


def _need(value, key, rid):
    if key not in value:
        raise ValueError("record %s has no '%s' (the XML protocol requires it)" % (rid, key))
    return value[key]


def _int(text):
    try:
        return int(text)
    except (TypeError, ValueError):
        return None


def _infer_op(f, registered):
    if "Session" in f or not registered:
        return "Register"
    if "LogId" in f or "TransID" in f:
        return "TimeLog_v2"  # either log: both are acknowledged alike
    return "KeepAlive"


def _unknown_session(result, reason):
    if result.startswith("failunknowntoken"):
        return True
    if not result.startswith("fail"):
        return False
    reason = reason.lower()
    for words in ("unknown token", "unknown session", "not registered", "register first"):
        if words in reason:
            return True
    return False
