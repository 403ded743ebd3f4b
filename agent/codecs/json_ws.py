# Seed 001 JSON WebSocket protocol, device side, sans-IO: text in, events
# out; methods return the text to send. No sockets, no clocks, so it is
# tested with plain strings on both runtimes.
#
# The seed defines no command result and no acknowledgement. A command's
# outcome is reported with the seed's own `event` message (event_type
# "command_result"), so a server that knows only the seed still stores it.
import json

from agent.codecs.session import (  # noqa: F401 - re-exported for the uplink
    REGISTERED, ACK, AUTH_FAILED, SERVER_ERROR, COMMAND, SEND, BAD_INPUT, NOTHING)

# What the cloud may send a device (seed "Server -> Client Messages").
# device_status/telemetry/event are admin broadcasts; a device ignores them.
# `ack` is our optional extension: a server that announces `"acks": true`
# in `registered` acknowledges each numbered record; others never send it.
SERVER_TYPES = ("registered", "pong", "ping", "command", "error",
                "device_status", "telemetry", "event", "ack")

# Journal record kinds this protocol carries (all of them: events and
# telemetry are seed messages; punches and admin logs travel as events).
CARRIES = ("telemetry", "event", "punch", "admin")


def carries(kind, name):
    return kind in CARRIES


class Session:
    __slots__ = ("device_id", "token", "max_frame", "registered")

    def __init__(self, device_id, token, max_frame=16384):
        self.device_id = device_id
        self.token = token
        self.max_frame = max_frame
        self.registered = False

    # -- outgoing -------------------------------------------------------------
    def hello(self):
        self.registered = False
        return json.dumps({"type": "register", "device_id": self.device_id,
                           "token": self.token})

    def telemetry(self, payload, rid=None, t=None):
        msg = {"type": "telemetry", "device_id": self.device_id, "payload": payload}
        return json.dumps(_numbered(msg, rid, t))

    def event(self, event_type, payload, rid=None, t=None):
        msg = {"type": "event", "device_id": self.device_id, "event_type": event_type,
               "payload": payload}
        return json.dumps(_numbered(msg, rid, t))

    def record(self, rec):
        """A journal record [id, time, kind, name, value] as a seed message
        carrying the record id (for acks and de-duplication) and its time."""
        rid, t, kind, name, value = rec
        if kind == "telemetry":
            return self.telemetry(value, rid, t)
        if kind == "event":
            return self.event(name, value, rid, t)
        return self.event(kind, value, rid, t)  # punch, admin: event_type names the kind

    def ping(self):
        return '{"type": "ping"}'

    def command_result(self, cmd_id, name, ok, result=None, error=None):
        payload = {"command": name, "ok": ok}
        if cmd_id is not None:
            payload["id"] = cmd_id
        if ok:
            payload["result"] = result if result is not None else {}
        else:
            payload["error"] = error
        return self.event("command_result", payload)

    # -- incoming -------------------------------------------------------------
    def receive(self, text):
        """One message from the cloud -> a tuple (event, ...)."""
        if not isinstance(text, str):
            return (BAD_INPUT, "bad_frame", "binary frame ignored (protocol is JSON text)")
        if len(text) > self.max_frame:
            return (BAD_INPUT, "oversized_frame",
                    "message of %d bytes over the %d byte limit ignored" % (len(text), self.max_frame))
        try:
            msg = json.loads(text)
        except ValueError:
            return (BAD_INPUT, "bad_json", "malformed JSON ignored: %r" % text[:60])
        if not isinstance(msg, dict):
            return (BAD_INPUT, "bad_message", "message is not a JSON object: %r" % text[:60])
        kind = msg.get("type")
        if kind not in SERVER_TYPES:
            return (BAD_INPUT, "unknown_type", "unknown message type %r ignored" % (kind,))

        if kind == "registered":
            self.registered = True
            return (REGISTERED, msg.get("acks") is True)
        if kind == "ack":
            rid = msg.get("id")
            if not isinstance(rid, int) or isinstance(rid, bool) or rid < 1:
                return (BAD_INPUT, "bad_ack", "ack without a record id ignored")
            return (ACK, rid)
        if kind == "ping":
            return (SEND, '{"type": "pong"}')
        if kind == "error":
            text = msg.get("message") or msg.get("error") or "no reason given"
            if not self.registered:
                return (AUTH_FAILED, str(text))
            return (SERVER_ERROR, str(text))
        if kind == "command":
            name = msg.get("command")
            if not isinstance(name, str) or not name:
                return (BAD_INPUT, "bad_command", "command without a command name ignored")
            target = msg.get("device_id")
            if target is not None and target != self.device_id:
                return (BAD_INPUT, "bad_command", "command for device %r ignored" % (target,))
            payload = msg.get("payload")
            if payload is None:
                payload = {}
            return (COMMAND, msg.get("id"), name, payload)
        return (NOTHING,)


def _numbered(msg, rid, t):
    if rid is not None:
        msg["id"] = rid
    if t is not None:
        msg["time"] = t
    return msg
