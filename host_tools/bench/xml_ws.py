"""The bench's side of the XML biometric protocol (SmackBio / ZK-compatible
terminals, on `/ws` beside JSON peers; docs/protocols/xml-biometric.md).

Parsing and writing use the device's own codecs (agent.codecs.xml_flat for
the document, xml_bio for the tags and the server commands), so the bench
refuses exactly what a device would (DTDs, entities, nesting, size) and
commands round-trip through the same tables.

Every answer is a `<Response>` whose `Result` is `success` or `Fail` (with a
`Reason`), echoing the request's `Operation` and, for logs, its `LogId`, so
a terminal can match answers to what it sent. Failures never close the
connection, except a refused Register. A log whose `LogId` is stored with
other content is a conflict: `Fail`, never acknowledged, kept for review.
"""

from __future__ import annotations

import secrets
import time

from agent import records
from agent.codecs import xml_bio, xml_flat, xml_users
from agent.codecs.values import normal_wall

from .hub import DEVICE, POLICY_VIOLATION, CommandRefused, Conflict, Hub, Link

PROTOCOL = "xml"
TITLE = "XML biometric"
MAX_FIELDS = 64
NOT_REGISTERED = "not registered: send Register first"

# Operation -> (record kind, its tags): the device codec's own table.
_LOG_TAGS = {op: (kind, tags) for kind, (op, tags) in xml_bio.LOGS.items()}


def _response(fields: list) -> list[str]:
    return [xml_flat.encode("Response", fields)]


def _fail(hub: Hub, link: Link, kind: str, reason: str, echo: list = ()) -> list[str]:
    hub.error(link, kind, reason)
    return _response(list(echo) + [("Result", "Fail"), ("Reason", _xml_text(reason))])


def _xml_text(text: str) -> str:
    """`text` with every character XML cannot carry (controls, surrogates,
    U+FFFE/U+FFFF) shown as \\uXXXX: a reason quoting the peer's bytes must
    still be a document the peer can read."""
    return "".join(c if c in "\t\n" or (" " <= c and not "\ud800" <= c <= "\udfff" and c not in "\ufffe\uffff")
                   else f"\\u{ord(c):04x}" for c in text)


def encode_command(device_id: str, name: str, payload: dict, command_id: str | int) -> str | None:
    """An admin command as the Request a terminal understands (LockControl,
    GetDeviceStatus, SetTime, the user operations, with TransID), or None;
    CommandRefused naming the field a terminal could not read."""
    if name == "users_sync":
        raise CommandRefused("invalid", f"users_sync has no {TITLE} form (the protocol has no atomic full sync): "
                                        "send users_clear, then user_set for each user")
    try:
        return xml_bio.server_request(name, payload, command_id)
    except ValueError as exc:
        raise CommandRefused("invalid", f"{name}: {exc}") from None


async def receive(hub: Hub, link: Link, text: str) -> list[str]:
    """One XML text frame from a terminal -> replies for it."""
    try:
        root, fields = xml_flat.decode(text, max_bytes=hub.max_message, max_fields=MAX_FIELDS)
    except xml_flat.XmlError as exc:
        return _fail(hub, link, "malformed_xml", f"malformed XML: {exc}")
    op = fields.get("Operation", "")
    # Counted by known operation only: peer-chosen names must not grow the table.
    known = op == "Register" or op == "KeepAlive" or op in _LOG_TAGS
    hub.counts["xml:" + (op if known else "other")] += 1
    if root == "Response":
        await _answer(hub, link, op, fields)
        return []  # answering an answer could start an endless exchange
    if root != "Request":
        return _fail(hub, link, "invalid", f"unexpected root element <{root}>; expected <Request>")
    echo = [("Operation", op)] if xml_flat.is_name(op) else []
    if op == "Register":
        return await _register(hub, link, fields)
    if not op:
        return _fail(hub, link, "invalid", "missing <Operation>")
    if not known:
        return _fail(hub, link, "invalid", f"unknown Operation {op[:40]!r}", echo)
    if link.role != DEVICE or link.protocol != PROTOCOL:
        return _fail(hub, link, "invalid", NOT_REGISTERED, echo + _log_id(fields))
    if op == "KeepAlive":
        return _response([("Operation", "KeepAlive"), ("Result", "success"),
                          ("ServerTime", time.strftime("%Y-%m-%dT%H:%M:%S"))])
    return await _log(hub, link, op, fields)


def _log_id(fields: dict) -> list:
    return [("LogId", fields["LogId"])] if "LogId" in fields else []


async def _register(hub: Hub, link: Link, fields: dict) -> list[str]:
    echo = [("Operation", "Register")]
    if link.role is not None:
        return _fail(hub, link, "invalid",
                     "already registered on this connection; open a new connection to register again", echo)
    for name in ("DeviceSerialNo", "CloudId"):
        if not fields.get(name):
            return _fail(hub, link, "invalid", f"missing <{name}>", echo)
    serial = fields["DeviceSerialNo"]
    if not await hub.check_device(serial, fields["CloudId"]):
        reply = _fail(hub, link, "auth", f"authentication failed for device {serial}", echo)
        await link.send(reply[0])
        await link.close(POLICY_VIOLATION, "authentication failed")
        return []
    link.session = f"sess_{int(time.time())}_{secrets.token_hex(3)}"
    hub.claim(link, serial, PROTOCOL)
    return _response(echo + [("Result", "success"), ("Session", link.session), ("DeviceSerialNo", serial)])


async def _log(hub: Hub, link: Link, op: str, fields: dict) -> list[str]:
    kind, tags = _LOG_TAGS[op]
    echo = [("Operation", op)] + _log_id(fields)
    required = ["LogId"] + [tag for tag, _, default in tags if default is xml_bio.REQUIRED]
    for name in required:
        if not fields.get(name):
            return _fail(hub, link, "invalid", f"missing <{name}>", echo)
    value = {key: fields[tag] for tag, key, _ in tags if tag in fields}
    when = normal_wall(value[records.WHEN])
    if when is None:
        time_tag = next(tag for tag, key, _ in tags if key == records.WHEN)
        return _fail(hub, link, "invalid", f"unreadable <{time_tag}> {fields[time_tag][:40]!r}", echo)
    value[records.WHEN] = when
    try:
        await hub.log_record(link, kind, fields["LogId"], value, fields)
    except Conflict as c:
        # Counted by the hub; Fail keeps the log on the terminal.
        return _response(echo + [("Result", "Fail"), ("Reason", str(c))])
    # Acknowledged after the row is committed, duplicates too: the terminal
    # resends until it hears this.
    return _response(echo + [("Result", "success")])


async def _answer(hub: Hub, link: Link, op: str, fields: dict) -> None:
    """A terminal's Response to a server command: relayed to admins as a
    command_result, matched to the command by TransID."""
    if link.role != DEVICE or link.protocol != PROTOCOL:
        hub.error(link, "invalid", f"Response <{op or '?'}> from a connection not registered in XML")
        return
    ok = fields.get("Result", "").strip().lower() in ("success", "ok")
    result = {k: v for k, v in fields.items() if k not in ("Operation", "TransID", "Result", "Reason")}
    if ok and op in xml_users.LIST_OPS + ("GetUserData",):
        # The user as every protocol's admin reads it, beside the tags.
        result.update(xml_users.read_answer(fields))
    await hub.command_result(link, fields.get("TransID"), ok, result, fields.get("Reason"), operation=op)
