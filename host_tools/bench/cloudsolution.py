"""The bench's side of CloudSolution 3.0 over HTTP (devices POST JSON to
`/api/device-http`; docs/protocols/cloudsolution-http.md).

`cmd` names the request (`reg`, `sendlog`, `checklive`) and every reply
echoes it as `ret` with a boolean `result` (and a `reason` when false).
Malformed requests get HTTP 400 with the same reply shape; a well-formed
request from an unknown device, or without its token, gets HTTP 200 with
`result: false`, as the protocol has it.

Every request carries the device's token: a `"token"` field beside `sn`
(what doorlink sends) or `Authorization: Bearer TOKEN`. The protocol's own
devices send none; they are let in on their serial number alone only when
the policy says so (`--trust-sn-only`, a closed network).

`sendlog` record i stands for device log `logindex + i`; punches are stored
under that log id and door events under that record id, so a batch the
device resends (it never heard our reply) is acknowledged again, stored once.
A batch is stored in one transaction: all of it, or, when something fails,
none of it. A record whose id is stored with other content is a conflict:
the reply's `count` stops before it (`result: false` when it is the first).

HTTP has no connection to push on: a device counts as online from its
first request until it has been silent for OFFLINE_AFTER_S. Admin commands
for it wait in a queue; the oldest rides on the next reply (`"cmd": {...}`),
and the device's answer, a POST with `ret` set to the command word, comes
back to admins as a command_result.
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from agent import records
from agent.codecs import cloudsolution as cs
from agent.codecs import cs_users
from agent.codecs.values import is_int

from . import strict_json
from .hub import CommandRefused, Hub, Kept, Link

MAX_RECORD_ID = (1 << 63) - 1   # a SQLite integer: logindex + i must fit

PROTOCOL = "http"
TITLE = "CloudSolution"
PATH = cs.PATH
MAX_BODY = 1 << 20        # 1 MB
OFFLINE_AFTER_S = 120.0   # silent this long: shown offline
MAX_QUEUED = 32           # admin commands waiting for one device
REQUESTS = ("reg", "sendlog", "checklive")


class BadRequest(Exception):
    """The request is malformed: HTTP 400 with this reason."""


class Poller:
    """What the bench knows of one device between its requests."""

    __slots__ = ("last_seen", "queue", "waiting")

    def __init__(self) -> None:
        self.last_seen = time.monotonic()
        self.queue: deque[str] = deque()        # encoded commands, oldest first
        # (word, command id) handed to the device, awaiting its answer; a
        # command whose reply never reached it is forgotten in time
        self.waiting: deque[tuple[str, str | int]] = deque(maxlen=MAX_QUEUED)


def cloudtime(now: float | None = None) -> str:
    """The server clock in the documented format, UTC: '2026-06-12T10:30:00Z'."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if now is None else now))


def _check_sendlog(msg: dict) -> list[dict]:
    count, logindex, recs = msg.get("count"), msg.get("logindex"), msg.get("record")
    if "count" not in msg:
        raise BadRequest("missing field 'count'")
    if not is_int(count) or count < 0:
        raise BadRequest("field 'count' must be a non-negative integer")
    if "logindex" not in msg:
        raise BadRequest("missing field 'logindex'")
    if not is_int(logindex) or logindex < 0:
        raise BadRequest("field 'logindex' must be a non-negative integer")
    if is_int(count) and logindex + max(count, 1) - 1 > MAX_RECORD_ID:
        raise BadRequest("field 'logindex' is out of range: logindex + count - 1 must be at most 2**63-1")
    if "record" not in msg:
        raise BadRequest("missing field 'record'")
    if not isinstance(recs, list):
        raise BadRequest("field 'record' must be an array")
    if count != len(recs):
        raise BadRequest(f"count is {count} but 'record' holds {len(recs)} records")
    for i, rec in enumerate(recs):
        if not isinstance(rec, dict):
            raise BadRequest(f"record {i} must be a JSON object")
        enrollid = rec.get("enrollid")
        if not (is_int(enrollid) and enrollid >= 0) and not (isinstance(enrollid, str) and enrollid):
            raise BadRequest(f"record {i}: field 'enrollid' must be a non-negative integer or a non-empty string")
        if not isinstance(rec.get("time"), str) or not rec["time"]:
            raise BadRequest(f"record {i}: field 'time' must be a non-empty string")
        if enrollid == 0 and cs.door_event_name(rec.get("event")) is None:
            raise BadRequest(f"record {i}: a door event (enrollid 0) needs 'event' 0-{len(cs.DOOR_EVENTS) - 1}")
    return recs


def encode_command(device_id: str, name: str, payload: dict, command_id: str | int) -> str | None:
    """An admin command as the server command object (JSON text) a device
    reads from a reply, or None when CloudSolution has no word for it;
    CommandRefused naming the field a device could not read."""
    if name == "users_sync":
        raise CommandRefused("invalid", f"users_sync has no {TITLE} form (the protocol has no atomic full sync): "
                                        "send users_clear, then user_set for each user")
    try:
        obj = cs.command_request(name, payload)
    except ValueError as exc:
        raise CommandRefused("invalid", f"{name}: {exc}") from None
    return None if obj is None else json.dumps({"id": command_id, **obj})


class CloudSolution:
    """The protocol's state on the bench: one Poller per device seen."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.pollers: dict[str, Poller] = {}

    def _link(self, sn: str, peer: str) -> Link | None:
        """The device's Link: a queue, since HTTP cannot push. None when the
        device is online over another protocol: a request that names its
        serial number (no credential: the protocol's devices send none) must
        not close that link and take its commands."""
        link = self.hub.devices.get(sn)
        if link is not None and link.protocol == PROTOCOL:
            link.peer = peer
            return link
        if link is not None:
            return None
        poller = self.pollers.setdefault(sn, Poller())

        async def queue(text: str) -> None:
            if len(poller.queue) >= MAX_QUEUED:
                raise CommandRefused("busy", f"{MAX_QUEUED} commands already wait for {sn}; "
                                             "it takes one per request")
            poller.queue.append(text)

        async def forget(code: int, reason: str) -> None:
            poller.queue.clear()

        link = Link(peer, queue, forget)
        link.session = poller
        self.hub.claim(link, sn, PROTOCOL)
        return link

    async def sweep(self) -> None:
        """Devices silent for OFFLINE_AFTER_S go offline (call periodically)."""
        now = time.monotonic()
        for sn, link in list(self.hub.devices.items()):
            if link.protocol == PROTOCOL and now - link.session.last_seen > OFFLINE_AFTER_S:
                await self.hub.release(link)
                self.pollers.pop(sn, None)

    def refuse(self, reason: str, peer: str, cmd: str = "error", kind: str = "http_invalid") -> tuple[int, dict]:
        """A malformed request: counted, reported, answered with HTTP 400."""
        self.hub.errors[kind] += 1
        self.hub.notify("error", {"peer": peer, "message": reason, "kind": kind, "device_id": None})
        return 400, {"ret": cmd, "result": False, "reason": reason}

    async def _authenticated(self, sn: str, token: str | None, peer: str, cmd: str) -> dict | None:
        """None when the request may go on; otherwise the refusal (counted).
        An unknown device costs the same as a wrong token."""
        hub = self.hub
        known = hub.store.known_device(sn)
        if token is None and known and hub.policy.trust_sn_only:
            return None
        ok = await hub.check_device(sn, token or "")
        if ok:
            return None
        # The reply does not tell an unknown serial number from a known one
        # (that would let anyone list the provisioned terminals); the log does.
        if token is None:
            reason = (f"authentication required for device {sn}: send its token "
                      "(\"token\" in the body, or Authorization: Bearer)")
        else:
            reason = f"authentication failed for device {sn}"
        message = reason if known else f"unknown device {sn} ({reason})"
        hub.errors["auth"] += 1
        hub.notify("error", {"peer": peer, "message": message, "kind": "auth", "device_id": sn})
        return {"ret": cmd, "result": False, "reason": reason}

    async def request(self, body: bytes, peer: str, bearer: str | None = None) -> tuple[int, dict, bool]:
        """One POSTed body (and the token of an `Authorization: Bearer`
        header, if any) -> (HTTP status, reply object, whether the device
        was let in)."""
        hub = self.hub
        cmd = "error"
        try:
            try:
                msg = strict_json.parse(body.decode("utf-8"))
            except (UnicodeDecodeError, ValueError) as exc:
                raise BadRequest(f"body is not JSON: {exc}") from None
            if not isinstance(msg, dict):
                raise BadRequest("body must be a JSON object")
            answer = "ret" in msg and "cmd" not in msg
            word = msg.get("ret" if answer else "cmd")
            if not isinstance(word, str) or not word:
                raise BadRequest("missing field 'cmd'")
            cmd = word
            if not answer and cmd not in REQUESTS:
                shown = cmd if len(cmd) <= 40 else cmd[:40] + "..."
                raise BadRequest(f"unknown cmd {shown!r}; expected {', '.join(REQUESTS)}")
            sn = msg.get("sn")
            if not isinstance(sn, str) or not sn:
                raise BadRequest("field 'sn' must be a non-empty string")
            token = msg.get("token", bearer)
            if "token" in msg and (not isinstance(token, str) or not token):
                raise BadRequest("field 'token' must be a non-empty string")
            if bearer is not None and token != bearer:
                raise BadRequest("the body's 'token' and the Authorization header differ")
            recs = _check_sendlog(msg) if cmd == "sendlog" else None
        except BadRequest as exc:
            return (*self.refuse(str(exc), peer, cmd), False)

        hub.counts["http_" + ("answer" if answer else cmd)] += 1
        refused = await self._authenticated(sn, token, peer, cmd)
        if refused is not None:
            return 200, refused, False

        link = self._link(sn, peer)
        if link is None:
            hub.errors["auth"] += 1
            hub.notify("error", {"peer": peer, "message": f"{sn} is online over another protocol",
                                 "kind": "auth", "device_id": sn})
            return 200, {"ret": cmd, "result": False, "reason": "device is connected over another protocol"}, True
        poller: Poller = link.session
        poller.last_seen = time.monotonic()
        if cmd == "reg":
            link.announce = dict(link.announce or {"replaced": False}, devinfo=msg.get("devinfo"))
        await hub.after_reply(link)  # HTTP cannot push: nothing reaches the device before this reply

        if answer:
            reply: dict[str, Any] = {"ret": cmd, "result": True, "cloudtime": cloudtime()}
            await self._answer(link, poller, cmd, msg)
        elif cmd == "reg":
            reply = {"ret": cmd, "result": True, "cloudtime": cloudtime(), "nosenduser": True}
        elif cmd == "checklive":
            reply = {"ret": cmd, "result": True, "cloudtime": cloudtime()}
        else:
            stored, conflict = await self._store(link, msg["logindex"], recs)
            reply = {"ret": cmd, "result": True, "count": stored, "logindex": msg["logindex"],
                     "cloudtime": cloudtime(), "access": 1}
            if conflict is not None:
                # The count stops before it: the device keeps it and the
                # records after it, and sends them again.
                reply["reason"] = str(conflict)
                if not stored:
                    reply = {"ret": cmd, "result": False, "reason": str(conflict), "cloudtime": cloudtime()}
        if poller.queue:
            command = json.loads(poller.queue.popleft())
            poller.waiting.append((command["cmd"], command.pop("id")))
            reply["cmd"] = command
        return 200, reply, True

    async def _store(self, link: Link, logindex: int, recs: list[dict]) -> tuple[int, Exception | None]:
        """The batch, in one transaction: (records stored or already
        there, the conflict that stopped it, if any)."""
        hub = self.hub

        def step(i: int, rec: dict) -> Callable[[], Kept | None]:
            log_id = logindex + i
            if rec["enrollid"] == 0:
                return lambda: hub.keep_event(link, cs.door_event_name(rec["event"]), rec, record_id=log_id)
            value = {records.USER: str(rec["enrollid"]), records.WHEN: rec["time"],
                     records.ATTEND: rec.get("inout", records.IN), "mode": rec.get("mode")}
            return lambda: hub.keep_log(link, records.PUNCH, str(log_id), value, rec)

        return await hub.batch(link, [step(i, rec) for i, rec in enumerate(recs)])

    async def _answer(self, link: Link, poller: Poller, word: str, msg: dict) -> None:
        """The device's answer to a command it took from a reply: matched to
        the oldest command handed out under that word."""
        command_id = None
        for i, (w, cid) in enumerate(poller.waiting):
            if w == word:
                command_id = cid
                del poller.waiting[i]
                break
        ok = msg.get("result") in (True, 1)  # as devices read replies: a boolean, or 1/0
        result = {k: v for k, v in msg.items() if k not in ("ret", "sn", "result", "reason", "token")}
        if ok and word in ("getuserinfo", "getuserlist"):
            # The user(s) as every protocol's admin reads them, beside the fields.
            result.update(cs_users.read_answer(word, msg))
        reason = msg.get("reason") if isinstance(msg.get("reason"), str) else None
        await self.hub.command_result(link, command_id, ok, result, reason, word=word)
