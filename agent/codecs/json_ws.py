# The JSON WebSocket device protocol, device side, sans-IO: text in, events
# out (agent/codecs/session.py); methods return the text to send. No
# sockets, no clocks, so it is tested with plain strings on both runtimes.
#
# The protocol defines no command result and no acknowledgement. A
# command's outcome is reported with the protocol's own `event` message
# (event_type "command_result"), so a server that knows only the protocol
# still stores it. Records carry their journal id and time; a server that
# announces `"acks": true` in `registered` acknowledges each id
# ({"type": "ack", "id": N}); others never send it (docs/protocols/json-websocket.md).
import json

from agent import records
from agent.codecs import json_in
from agent.codecs.ints import is_int
from agent.codecs.session import (
    CONNECTING,
    NOTHING,
    Ack,
    AuthFailed,
    BadInput,
    Command,
    Registered,
    Send,
    ServerError,
    TextSession,
    shown,
)

# What the cloud may send a device. device_status/telemetry/event are admin
# broadcasts; a device ignores them. `ack` is our optional extension.
# Arrays and objects in one message (agent/codecs/json_in.py).
# A users_sync page (50 users, each an object with its cards, doors and
# schedule arrays: up to 5 each) is the largest a cloud needs to send.
MAX_CONTAINERS = 256
MAX_NAME = 32   # a command's name: the Thing's names are short words
SERVER_TYPES = ("registered", "pong", "ping", "command", "error",
                "device_status", "telemetry", "event", "ack")
PONG = '{"type": "pong"}'


def _finite(v, depth=0):
    """No NaN or infinity anywhere in a record's value (JSON has neither;
    on a board with single-precision floats 1e308 is itself infinite)."""
    if isinstance(v, float):
        return -1e308 < v < 1e308
    if depth > 8:
        return True
    if isinstance(v, dict):
        v = list(v.values())
    if isinstance(v, (list, tuple)):
        for x in v:
            if not _finite(x, depth + 1):
                return False
    return True


class Session(TextSession):
    """Carries every record kind: events and telemetry are protocol
    messages; punches and admin logs travel as events of that type.
    Messages are parsed from their UTF-8 bytes as received."""
    AS_BYTES = True
    __slots__ = ("device_id", "token")

    def __init__(self, device_id, token, max_frame=16384):
        TextSession.__init__(self, max_frame)
        self.device_id = device_id
        self.token = token

    # -- outgoing -------------------------------------------------------------
    def hello(self):
        self.open()
        return json.dumps({"type": "register", "device_id": self.device_id, "token": self.token})

    def record(self, rec):
        """A journal record as a protocol message carrying the record id
        (for acks and de-duplication) and its time."""
        self.require("record()")
        kind = records.kind(rec)
        if kind == records.TELEMETRY:
            msg = {"type": "telemetry", "device_id": self.device_id, "payload": rec[records.VALUE]}
        else:
            # punch, admin_log: event_type names the kind
            msg = self._event(rec[records.NAME] if kind == records.EVENT else kind, rec[records.VALUE])
        msg["id"] = rec[records.ID]
        msg["time"] = rec[records.TIME]
        if not _finite(rec[records.VALUE]):
            # NaN/Infinity are not JSON: no server would take it, ever.
            raise ValueError("record %s holds a number JSON cannot carry (NaN or infinite)" % rec[records.ID])
        return json.dumps(msg)

    def ping(self):
        self.require("ping()")
        return '{"type": "ping"}'

    def command_result(self, cmd_id, name, ok, result=None, error=None):
        self.require("command_result()")
        payload = {"command": name, "ok": ok}
        if cmd_id is not None:
            payload["id"] = cmd_id
        if ok:
            payload["result"] = result if result is not None else {}
            if not _finite(payload["result"]):
                raise ValueError("result holds a number JSON cannot carry (NaN or infinite)")
        else:
            payload["error"] = error
        return json.dumps(self._event(records.COMMAND_RESULT, payload))

    def _event(self, event_type, payload):
        return {"type": "event", "device_id": self.device_id, "event_type": event_type, "payload": payload}

    # -- incoming -------------------------------------------------------------
    def _receive(self, text):
        try:
            msg = json_in.loads(text, MAX_CONTAINERS)
        except json_in.TooComplex as e:
            return BadInput("bad_message", "message with %s ignored" % e)
        except ValueError as e:
            return BadInput("bad_json", "malformed JSON ignored: %s" % e)
        if not isinstance(msg, dict):
            return BadInput("bad_message", "message is not a JSON object: %r" % json_in.head(text))
        kind = msg.get("type")
        if kind not in SERVER_TYPES:
            return BadInput("unknown_type", "unknown message type %s ignored" % shown(kind))
        if kind == "ping":
            return Send(PONG)
        if kind == "error":
            reason = str(msg.get("message") or msg.get("error") or "no reason given")
            # The protocol's `error` names nothing: it may be about a record.
            return AuthFailed(reason) if self.state == CONNECTING else ServerError(reason, True)
        if kind == "registered":
            if self.state != CONNECTING:
                return BadInput("unexpected_message", "'registered' on a registered link ignored")
            self.accepted()
            return Registered(msg.get("acks") is True)
        if self.state == CONNECTING:
            if kind in ("ack", "command"):
                return BadInput("unexpected_message", "%r before 'registered' ignored" % kind)
            return NOTHING
        if kind == "ack":
            rid = msg.get("id")
            if not is_int(rid) or rid < 1:
                return BadInput("bad_ack", "ack without a record id ignored")
            return Ack(rid)
        if kind == "command":
            name = msg.get("command")
            if not isinstance(name, str) or not name or len(name) > MAX_NAME:
                return BadInput("bad_command", "command without a command name (of at most %d characters) "
                                               "ignored" % MAX_NAME)
            target = msg.get("device_id")
            if target is not None and target != self.device_id:
                return BadInput("bad_command", "command for device %s ignored" % shown(target))
            payload = msg.get("payload")
            return Command(msg.get("id"), name, {} if payload is None else payload)
        return NOTHING
