"""Bench cloud: the server side of seed 001's XML biometric protocol.

SmackBio/ZK-style terminals share `/ws` with JSON peers; server.py hands
every text frame that starts with `<` to `handle_xml`. Parsing and encoding
use the device's own flat-XML codec (agent.codecs.xml_flat), so the bench
refuses exactly what the device would (DTDs, entities, nesting, size).

Every answer is a `<Response>` whose `Result` is `success` or `Fail` (with a
`Reason`), echoing the request's `Operation` and, for logs, its `LogId`, so
a terminal can match answers to what it sent. Failures never close the
connection, except a refused Register (like the JSON path).
"""

from __future__ import annotations

import secrets
import time

from aiohttp import WSCloseCode, web

from agent.codecs import xml_flat
from agent.codecs.xml_bio import wall_time

from .server import STORE, _announce_online, _broadcast, _claim_device, _Conn, _report_error, _State

PROTOCOL = "xml"
MAX_FIELDS = 64
NOT_REGISTERED = "not registered: send Register first"


def is_xml_device(conn: _Conn) -> bool:
    return getattr(conn, "protocol", None) == PROTOCOL and conn.device_id is not None


async def _reply(conn: _Conn, fields: list) -> None:
    if conn.ws.closed:
        return
    try:
        await conn.ws.send_str(xml_flat.encode("Response", fields))
    except Exception:
        pass  # the peer is gone; its cleanup runs in the socket handler


# Admin commands an XML terminal understands, as the Request that carries
# them (field-seen server commands: LockControl, GetDeviceStatus, SetTime).
def command_request(command: str, payload: dict, command_id) -> str | None:
    """The XML Request for an admin command, or None if terminals have none."""
    if command == "unlock":
        fields = [("Operation", "LockControl"), ("Mode", "1")]
    elif command == "lock":
        fields = [("Operation", "LockControl"), ("Mode", "2")]
    elif command == "status":
        fields = [("Operation", "GetDeviceStatus")]
    elif command == "set_time" and isinstance(payload.get("time"), str):
        fields = [("Operation", "SetTime"), ("Time", payload["time"])]
    else:
        return None
    fields.append(("TransID", str(command_id)))
    return xml_flat.encode("Request", fields)


async def _fail(state: _State, conn: _Conn, kind: str, reason: str, echo: list = ()) -> None:
    _report_error(state, conn, kind, reason)
    await _reply(conn, list(echo) + [("Result", "Fail"), ("Reason", reason)])


async def handle_xml(app: web.Application, state: _State, conn: _Conn, text: str) -> None:
    """One XML text frame from a terminal."""
    try:
        root, fields = xml_flat.decode(text, max_bytes=state.max_message, max_fields=MAX_FIELDS)
    except xml_flat.XmlError as exc:
        await _fail(state, conn, "malformed_xml", f"malformed XML: {exc}")
        return
    op = fields.get("Operation", "")
    # Counted by known operation only: peer-chosen names must not grow the table.
    state.counts["xml:" + (op if op == "Register" or op in _HANDLERS else "other")] += 1
    if root == "Response":
        # A terminal's answer to a server command: never answered (answering
        # an answer could start an endless exchange). Admins get the same
        # command_result event a JSON device sends, so one admin client
        # works with every terminal.
        ok = fields.get("Result", "").lower() in ("success", "ok")
        result = {"id": fields.get("TransID"), "command": op, "ok": ok}
        if not ok:
            result["error"] = fields.get("Reason", "failed")
        out = {"type": "event", "device_id": conn.device_id, "event_type": "command_result",
               "payload": result, "received_at": time.time()}
        await _broadcast(state, out)
        state.notify("command_result", {"device_id": conn.device_id, "protocol": PROTOCOL, **fields})
        return
    if root != "Request":
        await _fail(state, conn, "invalid", f"unexpected root element <{root}>; expected <Request>")
        return
    echo = [("Operation", op)] if xml_flat.is_name(op) else []
    if op == "Register":
        await _on_register(app, state, conn, fields)
    elif not op:
        await _fail(state, conn, "invalid", "missing <Operation>")
    elif op not in _HANDLERS:
        await _fail(state, conn, "invalid", f"unknown Operation {op[:40]!r}", echo)
    elif not is_xml_device(conn):
        await _fail(state, conn, "invalid", NOT_REGISTERED, echo + _log_id(fields))
    else:
        await _HANDLERS[op](app, state, conn, fields)


def _log_id(fields: dict) -> list:
    return [("LogId", fields["LogId"])] if "LogId" in fields else []


def _missing(fields: dict, names: tuple) -> str | None:
    for name in names:
        if not fields.get(name):
            return f"missing <{name}>"
    return None


async def _on_register(app: web.Application, state: _State, conn: _Conn, fields: dict) -> None:
    echo = [("Operation", "Register")]
    if conn.role is not None:
        await _fail(state, conn, "invalid",
                    "already registered on this connection; open a new connection to register again", echo)
        return
    problem = _missing(fields, ("DeviceSerialNo", "CloudId"))
    if problem:
        await _fail(state, conn, "invalid", problem, echo)
        return
    serial = fields["DeviceSerialNo"]
    if not app[STORE].check_token(serial, fields["CloudId"]):
        await _fail(state, conn, "auth", f"authentication failed for device {serial}", echo)
        await conn.ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"authentication failed")
        return
    conn.protocol = PROTOCOL  # _Conn is a plain dataclass: the XML path tags its connections
    conn.session = f"sess_{int(time.time())}_{secrets.token_hex(3)}"
    replaced = _claim_device(app, state, conn, serial)
    await _reply(conn, echo + [("Result", "success"), ("Session", conn.session), ("DeviceSerialNo", serial)])
    await _announce_online(state, conn, replaced)


async def _on_time_log(app: web.Application, state: _State, conn: _Conn, fields: dict) -> None:
    echo = [("Operation", "TimeLog_v2")] + _log_id(fields)
    punch_time = wall_time(fields.get("PunchTime", ""))
    problem = _missing(fields, ("LogId", "UserId", "PunchTime"))
    if not problem and punch_time is None:
        problem = f"unreadable <PunchTime> {fields['PunchTime'][:40]!r}"
    if problem:
        await _fail(state, conn, "invalid", problem, echo)
        return
    new = app[STORE].add_punch(conn.device_id, PROTOCOL, fields["LogId"], fields["UserId"], punch_time, fields)
    await _stored(state, conn, echo, new, "punch", "punch", fields)


async def _on_admin_log(app: web.Application, state: _State, conn: _Conn, fields: dict) -> None:
    echo = [("Operation", "AdminLog_v2")] + _log_id(fields)
    log_time = wall_time(fields.get("Time", ""))
    problem = _missing(fields, ("LogId", "UserId", "Action", "Time"))
    if not problem and log_time is None:
        problem = f"unreadable <Time> {fields['Time'][:40]!r}"
    if problem:
        await _fail(state, conn, "invalid", problem, echo)
        return
    new = app[STORE].add_admin_log(conn.device_id, PROTOCOL, fields["LogId"], fields.get("AdminId", ""),
                                   fields["UserId"], fields["Action"], log_time, fields)
    await _stored(state, conn, echo, new, "admin_log", "admin", fields)


async def _stored(state: _State, conn: _Conn, echo: list, new: bool, kind: str, event_type: str,
                  fields: dict) -> None:
    # Acknowledge after the row is committed, duplicates too: the terminal
    # resends until it hears this.
    await _reply(conn, echo + [("Result", "success")])
    if not new:
        state.duplicates += 1
        return
    payload = {k: v for k, v in fields.items() if k != "Operation"}
    # Admins see the event a JSON device sends for the same journal record
    # (codecs.json_ws: event_type "punch" / "admin").
    out = {"type": "event", "device_id": conn.device_id, "event_type": event_type, "payload": payload,
           "received_at": time.time()}
    await _broadcast(state, out)
    state.notify(kind, {**out, "protocol": PROTOCOL})


async def _on_keepalive(app: web.Application, state: _State, conn: _Conn, fields: dict) -> None:
    await _reply(conn, [("Operation", "KeepAlive"), ("Result", "success"),
                        ("ServerTime", time.strftime("%Y-%m-%dT%H:%M:%S"))])


_HANDLERS = {
    "TimeLog_v2": _on_time_log,
    "AdminLog_v2": _on_admin_log,
    "KeepAlive": _on_keepalive,
}
