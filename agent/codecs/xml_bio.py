# The XML biometric protocol (SmackBio / ZK-compatible terminals), device
# side, sans-IO: the same Session interface and events as codecs.json_ws
# (agent/codecs/session.py), so the one WebSocket uplink drives either.
#
# Wire shape: <Request><Operation>X</Operation>...</Request> and
# <Response><Result>...</Result>...</Response>. Vendor firmware also speaks
# <Message><Request>X</Request>...</Message> / <Message><Response>X</Response>
# ...</Message> with TransID for the log id; both shapes are read, the
# documented one is written. A documented Response names no operation, so
# what it answers is inferred: a Session means Register, a LogId/TransID a log.
#
# Every log is acknowledged (Result success/OK echoing its id), so acks are
# always on. The uplink's acks are cumulative; a log the server refused
# (Result Fail) must stay in the journal, so later acks are held below it
# until the next hello(), after which everything unacknowledged is resent.
from agent import records
from agent.codecs import xml_commands, xml_flat
from agent.codecs.session import (
    CONNECTING,
    NOTHING,
    Ack,
    AuthFailed,
    BadInput,
    Command,
    Registered,
    Reregister,
    ServerError,
    TextSession,
    shown,
)
from agent.codecs.values import as_int, epoch_wall

TERMINAL_TYPE = "doorlink"
MAX_NAME = 32   # an Operation echoed in an answer: the protocol's are short words
# The log requests: record kind -> (Operation, its tags). Each tag carries a
# record value key, with a default for a record that lacks it, REQUIRED (the
# record cannot be sent without it) or OPTIONAL (left out). The bench reads
# logs back with the same table.
REQUIRED = None
OPTIONAL = ()
LOGS = {
    records.PUNCH: ("TimeLog_v2", (
        ("UserId", records.USER, REQUIRED), ("PunchTime", records.WHEN, REQUIRED),
        ("GMT", records.GMT, 0),  # the site's gmt, in fact: see Session.record
        ("AttendStat", records.ATTEND, records.IN), ("APStat", records.AP, 1),
        ("Action", records.ACTION, "FP"), ("JobCode", records.JOB, 0),
        ("Photo", "photo", OPTIONAL), ("Latitude", "lat", OPTIONAL), ("Longitude", "lon", OPTIONAL))),
    records.ADMIN_LOG: ("AdminLog_v2", (
        ("AdminId", records.ADMIN, "ADMIN"), ("UserId", records.USER, REQUIRED),
        ("Action", records.ACTION, REQUIRED), ("Time", records.WHEN, REQUIRED))),
}
# The server's commands (LockControl, GetDeviceStatus, SetTime, the user
# operations) and their answers: codecs.xml_commands.


# How a grant's credential is named in a TimeLog_v2's Action (vendor words).
GRANT_ACTIONS = {"card": "Card", "pin": "PWD", "card_pin": "Card+PWD", "fingerprint": "FP"}


class Session(TextSession):
    """Carries punches and admin logs (TimeLog_v2, AdminLog_v2)."""
    __slots__ = ("serial", "cloud_id", "gmt", "session", "_hold", "_acked", "_listed")
    CARRIES = (records.PUNCH, records.ADMIN_LOG)

    def __init__(self, device_serial, cloud_id, max_frame=16384, gmt=0):
        TextSession.__init__(self, max_frame)
        self.serial = device_serial
        self.cloud_id = cloud_id
        self.gmt = gmt
        self.session = None     # the server's session token, once registered
        self._hold = None       # lowest log id the server refused on this link
        self._acked = 0         # highest log id acknowledged on this link
        self._listed = None     # the user GetNextUserData continues after

    # -- outgoing -------------------------------------------------------------
    def hello(self):
        self.open()
        self.session = None
        self._hold = None
        self._acked = 0
        self._listed = None
        return _request("Register", [("DeviceSerialNo", self.serial), ("CloudId", self.cloud_id),
                                     ("TerminalType", TERMINAL_TYPE)])

    def carries(self, kind, name):
        # An access grant to a user is that user's TimeLog_v2 (record()),
        # as a ZK-style access terminal logs it; the protocol has no other
        # door events.
        return kind in self.CARRIES or (kind == records.EVENT and name == records.UNLOCKED)

    def record(self, rec):
        """A journal record as a TimeLog_v2 or AdminLog_v2 request; None
        for a record this protocol cannot carry (an unlock nobody's
        credential caused). A punch/admin record without its user or time
        raises ValueError (it cannot be sent, ever)."""
        self.require("record()")
        rid, kind, value = rec[records.ID], records.kind(rec), rec[records.VALUE]
        if kind == records.EVENT and rec[records.NAME] == records.UNLOCKED and isinstance(value, dict) \
                and value.get(records.USER) is not None:
            value = {records.USER: value[records.USER], records.WHEN: epoch_wall(rec[records.TIME], self.gmt),
                     records.ACTION: GRANT_ACTIONS.get(value.get(records.SOURCE), "Card")}
            kind = records.PUNCH
        if kind not in self.CARRIES:
            return None
        if not isinstance(value, dict):
            raise ValueError("record %s: value must be an object, not %s" % (rid, type(value).__name__))
        op, tags = LOGS[kind]
        fields = [("LogId", str(rid))]
        for tag, key, default in tags:
            if key in value:
                fields.append((tag, value[key]))
            elif default is REQUIRED:
                raise ValueError("record %s has no '%s' (the XML protocol requires it)" % (rid, key))
            elif default is not OPTIONAL:
                fields.append((tag, self.gmt if key == records.GMT else default))
        return _request(op, fields)

    def ping(self):
        self.require("ping()")
        return _request("KeepAlive", [])

    def command_result(self, cmd_id, name, ok, result=None, error=None):
        """The Response to a server command: its Operation echoed, TransID
        when the command had one, Result success/Fail, and for a failure its
        Reason. Scalar result values travel as tags of their own."""
        self.require("command_result()")
        op = xml_commands.COMMAND_OPS.get(name) or (name if xml_flat.is_name(name) else "Command")
        fields = [("Operation", op)]
        if cmd_id is not None:
            fields.append(("TransID", str(cmd_id)))
        fields.append(("Result", "success" if ok else "Fail"))
        if not ok:
            fields.append(("Reason", str(error or "failed")))
        elif isinstance(result, dict):
            fields += xml_commands.answer_tags(name, result, self.gmt)
            if name == "user_list":
                users = result.get("users") or []
                self._listed = users[0].get("id") if users and isinstance(users[0], dict) else None
        return xml_flat.encode("Response", fields)

    # -- incoming -------------------------------------------------------------
    def prepare(self, commands):
        if "user_set" in commands:
            from agent.codecs import xml_users  # noqa: F401 - see Session.prepare

    def _receive(self, text):
        try:
            root, f = xml_flat.decode(text, self.max_frame)
        except xml_flat.XmlError as e:
            return BadInput("bad_xml", "malformed XML ignored: %s" % _cut(str(e)))
        if root == "Message":  # vendor shape: the operation is the child's text
            if "Response" in f:
                return self._response(f.get("Response"), f)
            if "Request" in f:
                return self._request(f.get("Request"), f)
        elif root == "Response":
            return self._response(f.get("Operation"), f)
        elif root == "Request":
            return self._request(f.get("Operation"), f)
        return BadInput("unknown_operation", "XML message <%s> is neither a Request nor a Response" % root)

    def _response(self, op, f):
        result = f.get("Result", "").lower()  # vendor spellings: success, OK, Fail...
        ok = result in ("success", "ok")
        reason = f.get("Reason") or f.get("Result") or "no reason given"
        registered = self.state != CONNECTING
        if not op:
            op = _infer_op(f, registered)
        if "Result" not in f:
            if op == "KeepAlive":
                return NOTHING  # any answer proves the link
            if op not in _LOG_OPS:
                return BadInput("bad_message", "%s response without <Result> ignored" % shown(op))
            # A log answer that is not a clear success is a refusal: were it
            # ignored, the next log's ack (acks are cumulative) would pass
            # over this one and drop it unstored.
            ok, reason = False, "answer without <Result>"
        if op == "Register":
            if registered:
                return BadInput("unexpected_message", "Register response on a registered link ignored")
            if not ok:
                return AuthFailed(reason)
            self.accepted()
            self.session = f.get("Session") or None
            return Registered(True)
        if not registered:
            return BadInput("unexpected_message", "%s response before Register ignored" % shown(op))
        if _unknown_session(result, reason):
            return Reregister(reason)
        if op in _LOG_OPS:
            rid = as_int(f.get("LogId") or f.get("TransID"))
            if not ok:
                # Without a readable id, the refused log is the oldest one
                # unacknowledged (answers come in order).
                refused = rid if rid is not None else self._acked + 1
                if self._hold is None or refused < self._hold:
                    self._hold = refused
                return ServerError("%s %s refused: %s (kept, resent on reconnect)"
                                   % (op, f.get("LogId") or f.get("TransID") or "?", reason), True)
            if rid is None or rid < 1:
                return BadInput("bad_ack", "%s response without a numeric LogId ignored" % op)
            if self._hold is not None and rid >= self._hold:
                # Acks are cumulative: acknowledging past a refused log would drop it.
                rid = self._hold - 1
                if rid < 1:
                    return NOTHING
            self._acked = max(self._acked, rid)
            return Ack(rid)
        if op == "KeepAlive" or op in xml_commands.ANSWERED:
            return NOTHING if ok else ServerError("%s failed: %s" % (op, reason), False)
        return BadInput("unknown_operation", "response to unknown operation %s ignored" % shown(op))

    def _request(self, op, f):
        if self.state == CONNECTING:
            return BadInput("unexpected_message", "request %s before Register ignored" % shown(op))
        cmd_id = f.get("TransID") or None
        if not op or not xml_flat.is_name(op) or len(op) > MAX_NAME:
            return BadInput("unknown_operation", "request without a valid Operation (%s) ignored" % shown(op))
        try:
            got = xml_commands.request(op, f, self.gmt)
        except ValueError as e:
            return _refused(cmd_id, op, str(e))
        if got is None:
            return _refused(cmd_id, op, "%s is not supported by this device" % op)
        name, payload = got
        if op == "GetNextUserData" and "after" not in payload and self._listed is not None:
            payload["after"] = self._listed
        return Command(cmd_id, name, payload)


_LOG_OPS = tuple(LOGS[k][0] for k in LOGS)


server_request = xml_commands.server_request   # the bench's side, with the same tables


def _cut(text, n=200):
    return text if len(text) <= n else text[:n] + "..."


def _refused(cmd_id, op, why):
    """A request this device cannot run: answered Fail, never just ignored
    (the server would wait for an answer), through the uplink's command path."""
    return Command(cmd_id, None, {"error": why, "answer_as": op})


def _request(op, fields):
    return xml_flat.encode("Request", [("Operation", op)] + fields)


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
