"""The bench's side of the JSON WebSocket device protocol (devices and admin
dashboards on `GET /ws`; docs/protocols/json-websocket.md).

The first valid message decides the role: `register` (device) or
`subscribe` (admin). Devices push telemetry and events, stored in SQLite
and fanned out to every admin; numbered records are acknowledged once the
row is committed (`"acks": true` in `registered`); a number already stored
with other content is a conflict, answered with an `error` and never
acknowledged. Admins send commands, which the hub routes to the named
device in whatever protocol it speaks.

Admins authenticate with a token: in `subscribe` (`"token"`), or as
`Authorization: Bearer` on the WebSocket upgrade (app.py checks that one).
Without either, only a bench on loopback whose policy does not require it
lets an admin in (the protocol document's bare subscribe).

`receive()` handles one text message and returns the replies for the
sender; everything else (broadcasts, routing) goes through the hub.
"""

from __future__ import annotations

import json
from typing import Any

from agent import records
from agent.codecs.values import is_int

from . import strict_json
from .hub import ADMIN, ANONYMOUS, DEVICE, POLICY_VIOLATION, CommandRefused, Conflict, Hub, Link

PROTOCOL = "json_ws"
TITLE = "JSON WebSocket"
_ROLE_FIRST = "register or subscribe first"
MAX_RECORD_ID = (1 << 63) - 1           # a SQLite integer
# Device times are seconds since the epoch within years 1-9999: any clock
# a device may have, even an unset one, and nothing SQLite or a date
# library cannot hold.
MIN_TIME, MAX_TIME = -62135596800, 253402300800
AUTH_REQUIRED = ("admin authentication required: send the admin token in subscribe (\"token\") "
                 "or as Authorization: Bearer")

# type -> roles allowed to send it (None = no role yet)
_ALLOWED: dict[str, set] = {
    "ping": {None, DEVICE, ADMIN},
    "pong": {None, DEVICE, ADMIN},
    "register": {None},
    "subscribe": {None, ADMIN},
    "telemetry": {DEVICE},
    "event": {DEVICE},
    "command": {ADMIN},
}

_ROLE_ERRORS = {
    ("register", DEVICE): "already registered on this connection; open a new connection to register again",
    ("register", ADMIN): "register is not allowed on an admin connection",
    ("subscribe", DEVICE): "subscribe is not allowed on a device connection",
    ("telemetry", ADMIN): "telemetry is only accepted from a registered device, not an admin",
    ("event", ADMIN): "event is only accepted from a registered device, not an admin",
    ("command", DEVICE): "command is only accepted from an admin, not a device",
}


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return type(value).__name__


def _need_str(msg: dict, name: str) -> str | None:
    if name not in msg:
        return f"missing field '{name}'"
    value = msg[name]
    if not isinstance(value, str) or not value:
        return f"field '{name}' must be a non-empty string"
    return None


def _need_object(msg: dict, name: str, required: bool) -> str | None:
    if name not in msg:
        return f"missing field '{name}'" if required else None
    if not isinstance(msg[name], dict):
        return f"field '{name}' must be a JSON object, got {_kind(msg[name])}"
    return None


def validate_message(msg: Any, role: str | None = None) -> str | None:
    """Why `msg` is unacceptable on a connection with `role`, or None.

    `role` is None before register/subscribe, then "device" or "admin".
    Unknown extra fields are ignored so peers can add optional ones.
    """
    if not isinstance(msg, dict):
        return f"message must be a JSON object, got {_kind(msg)}"
    if "type" not in msg:
        return "missing field 'type'"
    mtype = msg["type"]
    if not isinstance(mtype, str):
        return f"field 'type' must be a string, got {_kind(mtype)}"
    if mtype not in _ALLOWED:
        shown = mtype if len(mtype) <= 40 else mtype[:40] + "..."
        return f"unknown message type {shown!r}"
    if role not in _ALLOWED[mtype]:
        return _ROLE_FIRST if role is None else _ROLE_ERRORS[(mtype, role)]

    if mtype == "register":
        return _need_str(msg, "device_id") or _need_str(msg, "token")
    if mtype == "subscribe":
        if "role" not in msg:
            return "missing field 'role'"
        if msg["role"] != ADMIN:
            return f"unsupported role {msg['role']!r}; only 'admin' can subscribe"
        if "token" in msg:
            return _need_str(msg, "token")
        return None
    if mtype in ("telemetry", "event"):
        if "device_id" in msg and not isinstance(msg["device_id"], str):
            return "field 'device_id' must be a string"
        if "time" in msg and (isinstance(msg["time"], bool) or not isinstance(msg["time"], (int, float))):
            return "field 'time' must be a number (seconds since the epoch)"
        if "time" in msg and not MIN_TIME <= msg["time"] < MAX_TIME:
            return "field 'time' is out of range (seconds since the epoch, years 1-9999)"
        if is_int(msg.get("id")) and msg["id"] > MAX_RECORD_ID:
            return "field 'id' (a record id) is out of range: at most 2**63-1"
        if mtype == "telemetry":
            return _need_object(msg, "payload", required=True)
        return _need_str(msg, "event_type") or _need_object(msg, "payload", required=False)
    if mtype == "command":
        err = _need_str(msg, "device_id") or _need_str(msg, "command") or _need_object(msg, "payload", required=False)
        if err:
            return err
        if "id" in msg:
            cid = msg["id"]
            if isinstance(cid, bool) or not isinstance(cid, (str, int)) or cid == "":
                return "field 'id' must be a non-empty string or an integer"
        return None
    return None


def _error(hub: Hub, link: Link, kind: str, message: str, about: str | int | None = None) -> list[str]:
    """The protocol's error message; `about`: the id of the admin's command
    it refuses, so an admin with several waiting knows which (as a refused
    record's error carries the record's id)."""
    hub.error(link, kind, message)
    out: dict = {"type": "error", "message": message}
    if about is not None:
        out["id"] = about
    return [json.dumps(out)]


def encode_command(device_id: str, name: str, payload: dict, command_id: str | int) -> str:
    """An admin command as the device receives it."""
    return json.dumps({"type": "command", "device_id": device_id, "command": name, "payload": payload,
                       "id": command_id})


async def receive(hub: Hub, link: Link, text: str) -> list[str]:
    """One text message from a device or an admin -> replies for it."""
    size = len(text.encode("utf-8"))
    if size > hub.max_message:
        return _error(hub, link, "too_large", f"message too large: {size} bytes (limit {hub.max_message})")
    try:
        msg = strict_json.parse(text)
    except ValueError as exc:
        return _error(hub, link, "malformed_json", f"malformed JSON: {exc}")
    if link.role == DEVICE and link.protocol != PROTOCOL:
        return _error(hub, link, "invalid", f"this connection registered as {link.device_id} in another protocol "
                                            f"({link.protocol}); JSON messages are not taken on it")
    problem = validate_message(msg, link.role)
    if problem:
        return _error(hub, link, "invalid", problem)
    mtype = msg["type"]
    hub.counts[mtype] += 1
    if mtype == "ping":
        return [json.dumps({"type": "pong"})]
    if mtype == "pong":
        return []  # an answer to a ping; arriving at all is the point
    if mtype == "register":
        return await _register(hub, link, msg)
    if mtype == "subscribe":
        return await _subscribe(hub, link, msg)
    if mtype in ("telemetry", "event"):
        return await _device_data(hub, link, msg)
    return await _command(hub, link, msg)


async def _refuse(hub: Hub, link: Link, message: str) -> list[str]:
    """Authentication refused: say why, count it, hang up."""
    replies = _error(hub, link, "auth", message)
    await link.send(replies[0])
    await link.close(POLICY_VIOLATION, "authentication failed")
    return []


async def _subscribe(hub: Hub, link: Link, msg: dict) -> list[str]:
    if link.role == ADMIN:
        await hub.subscribe(link)  # again: the snapshot of who is online
        return []
    admin = link.admin
    if "token" in msg:
        admin = await hub.check_admin(msg["token"])
        if admin is None:
            return await _refuse(hub, link, "admin authentication failed")
    elif admin is None:
        if hub.policy.require_auth:
            return await _refuse(hub, link, AUTH_REQUIRED)
        admin = ANONYMOUS
    await hub.subscribe(link, admin)
    return []


async def _register(hub: Hub, link: Link, msg: dict) -> list[str]:
    device_id = msg["device_id"]
    if not await hub.check_device(device_id, msg["token"]):
        return await _refuse(hub, link, f"authentication failed for device {device_id}")
    hub.claim(link, device_id, PROTOCOL)
    # `acks` is our extension: a device that numbers its records gets an
    # `ack` for each and may forget it then. Devices that know only the
    # protocol ignore it.
    return [json.dumps({"type": "registered", "device_id": device_id, "acks": True})]


async def _device_data(hub: Hub, link: Link, msg: dict) -> list[str]:
    claimed = msg.get("device_id", link.device_id)
    if claimed != link.device_id:
        return _error(hub, link, "mismatch", f"device_id mismatch: connection is registered as "
                                             f"{link.device_id}, message says {claimed}")
    # Only a positive integer id is a journal record id; any other `id` is
    # some peer's own extra field and, like all extras, ignored.
    record_id = msg.get("id")
    if not is_int(record_id) or record_id < 1:
        record_id = None
    device_time = msg.get("time")
    try:
        if msg["type"] == records.TELEMETRY:
            await hub.telemetry(link, msg["payload"], record_id, device_time)
        else:
            await hub.event(link, msg["event_type"], msg.get("payload", {}), record_id, device_time)
    except Conflict as c:
        # Counted by the hub. No ack: the device keeps the record, and a
        # human decides (the conflicts table holds both).
        return [json.dumps({"type": "error", "message": str(c), "id": record_id})]
    # Acknowledged after the row is committed, duplicates too: the device
    # resends until it hears this.
    return [] if record_id is None else [json.dumps({"type": "ack", "id": record_id})]


async def _command(hub: Hub, link: Link, msg: dict) -> list[str]:
    command_id = hub.command_id(msg.get("id"))
    try:
        await hub.route_command(link, msg["device_id"], msg["command"], msg.get("payload", {}), command_id)
    except CommandRefused as e:
        return _error(hub, link, e.kind, str(e), msg.get("id"))
    return []
