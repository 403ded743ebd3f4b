"""The bench's side of the cloud-control API (docs: the seed's "Cloud Control
API"): the management channel, beside whichever data protocol a device
speaks.

A device connects to `GET /control` (app.py checks its `X-Device-Id` and
`Authorization: Bearer` token before the upgrade) and from then on answers
requests: `{"type": T, "body": B}` in, `{"type": T, "body": B, "error": ""}`
out, in order. The bench asks `app/state` as soon as it connects (the
answer is kept in the store, as is every later one) and pings it when it is
silent (app.py: aiohttp's heartbeat).

Replies carry no id: ORDER is the only correlation. Each device has one
FIFO of waiting requests; a reply goes to the oldest one, and only if its
type is that one's. A request whose admin gave up (timed out) stays in the
queue, so its late answer is not taken for the next one's; it is skipped
once the device answers a later request instead. Anything else a device
sends (a reply nobody waits for, of the wrong type, not JSON) is counted,
logged and dropped.

Signing: a device with a control key in the store (`doorlink bench
add-device ... --control-key KEY`) gets every request with `ts` (unix s),
`nonce` (32 hex) and `sig` = hex HMAC-SHA256(key, T "\\n" ts "\\n" nonce
"\\n" canon(B)); canon is JSON with sorted keys, no spaces, ASCII only, and
no floats (two runtimes need not print a float alike), "null" for no body.
The signature and the request types are the device's own code
(agent.codecs.signing, agent.codecs.control): the bench refuses what a
device would.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections import deque
from typing import Any

from agent.codecs import control as codec
from agent.codecs import signing

from . import strict_json
from .hub import DEVICE, GOING_AWAY, POLICY_VIOLATION, Hub, Link
from .limits import RateLimited

log = logging.getLogger("doorlink.bench")

PROTOCOL = "control"
PATH = "/control"
# A reply may carry a whole file or screenshot in base64 (the API has no
# chunking): aiohttp refuses a bigger frame from its header, before reading it.
MAX_MESSAGE = 8 << 20
ANSWER_S = 30.0          # an admin's default wait for a reply
MAX_ANSWER_S = 300.0     # and the longest it may ask for
MAX_WAITING = 16         # requests queued for one device
# The API's request types, counted by name; others as "other" (an admin's
# made-up names must not grow the table).
KNOWN = frozenset((
    "app/state", "app/register", "script/list", "script/run", "script/stop", "script/encrypt", "script/get",
    "script/put", "script/delete", "system/log/get", "system/log/delete", "system/reboot", "system/respring",
    "screen/snapshot", "touch/down", "touch/move", "touch/up", "key/down", "key/up", "file/list", "file/get",
    "file/put", "file/delete"))


class ControlError(Exception):
    """A request the bench could not get answered; `kind` says why
    (invalid, offline, busy, timeout, gone, too_large) and is counted."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


# -- the wire -------------------------------------------------------------------------

def check_type(mtype: Any) -> str | None:
    """Why `mtype` cannot be a request type, or None."""
    if codec.type_ok(mtype):
        return None
    shown = mtype[:codec.MAX_TYPE] if isinstance(mtype, str) else mtype
    return (f"'type' {shown!r} is not a request type: lower-case words joined by '/', at most "
            f"{codec.MAX_TYPE} characters, e.g. app/state")


def encode_request(mtype: str, body: Any = None, key: str | None = None, device: str = "") -> tuple[str, str | None]:
    """(a request as the device `device` receives it, its nonce); signed
    when it has a key (ValueError for a body that cannot be signed: one
    holding a float), else without a nonce. A body of None is left out (the
    API's body-less requests)."""
    msg: dict[str, Any] = {"type": mtype}
    nonce = None
    if body is not None:
        msg["body"] = body
    if key is not None:
        ts, nonce = int(time.time()), secrets.token_hex(16)
        try:
            sig = signing.sign(key, device, mtype, ts, nonce, body)
        except ValueError as e:
            raise ValueError(f"cannot sign this request ({e}): a number with a fraction or exponent prints "
                             "differently on the device; send it as a string or an integer") from None
        msg.update(ts=ts, nonce=nonce, sig=sig)
    return json.dumps(msg, separators=(",", ":")), nonce


def _error_text(value: Any) -> str:
    """A reply's `error` as text: "" for success however a device says it."""
    if value is None or value == "" or value is False:
        return ""
    return value if isinstance(value, str) else json.dumps(value)


# -- one device's channel ---------------------------------------------------------------

class _Waiting:
    __slots__ = ("future", "type", "nonce")

    def __init__(self, mtype: str, future: asyncio.Future, nonce: str | None = None) -> None:
        self.type = mtype
        self.future = future     # done without a reply: its admin gave up
        self.nonce = nonce       # a signed request's: its reply must be signed and bound to it


class _Channel:
    """A connected device: its key, its queue of waiting requests, and the
    lock that keeps queue order and wire order the same."""

    __slots__ = ("key", "lock", "queue")

    def __init__(self, key: str | None) -> None:
        self.key = key
        self.queue: deque[_Waiting] = deque()
        self.lock = asyncio.Lock()


class Control:
    """The management channels of every connected device: who is
    connected, requests in, replies back to whoever asked."""

    def __init__(self, hub: Hub, answer_s: float = ANSWER_S) -> None:
        self.hub = hub
        self.answer_s = answer_s
        self.links: dict[str, Link] = {}
        self._said = RateLimited(10.0)

    def online(self) -> list[str]:
        return sorted(self.links)

    def _drop(self, link: Link, kind: str, message: str) -> None:
        """Something a device sent that answers nothing: counted, logged, dropped."""
        text = f"control channel of {link.device_id}: {message}"
        self.hub.error(link, kind, text)
        self._said.log(logging.WARNING, text)

    # -- connections ---------------------------------------------------------------
    def connected(self, link: Link, device_id: str) -> None:
        """`link` (authenticated by app.py) is now `device_id`'s management
        channel; an older one is closed. Its state is asked for at once."""
        link.role, link.device_id, link.protocol = DEVICE, device_id, PROTOCOL
        link.session = _Channel(self.hub.store.control_key(device_id))
        old = self.links.get(device_id)
        self.links[device_id] = link
        if old is not None and old is not link:
            message = f"device {device_id}: a new control connection from {link.peer} replaced the one from {old.peer}"
            log.warning("%s", message)
            self.hub.error(link, "replaced", message)
            self.hub.spawn(old.close(POLICY_VIOLATION, "replaced by a new connection"))
        self.hub.store.set_control_online(device_id, True)
        self.hub.notify("control_online", {"device_id": device_id, "peer": link.peer,
                                           "signed": link.session.key is not None})
        self.hub.spawn(self._first_state(link))

    async def _first_state(self, link: Link) -> None:
        # receive() keeps the answer; a device that does not give one is
        # counted and stays connected.
        try:
            await self._ask(link, "app/state", None, self.answer_s)
        except ControlError as e:
            self.hub.error(link, "control_" + e.kind, str(e))

    def release(self, link: Link, reason: str = "disconnected") -> None:
        """The link is gone: whoever waits on it hears why."""
        link.closed = True
        channel = link.session
        if not isinstance(channel, _Channel):
            return
        gone = ControlError("gone", f"device {link.device_id} {reason} before answering")
        while channel.queue:
            waiting = channel.queue.popleft()
            if not waiting.future.done():
                waiting.future.set_exception(gone)
        if self.links.get(link.device_id) is link:
            del self.links[link.device_id]
            try:
                self.hub.store.set_control_online(link.device_id, False)
            except Exception:  # noqa: BLE001, S110 - the store is already closed at shutdown
                pass
            self.hub.notify("control_offline", {"device_id": link.device_id, "peer": link.peer, "reason": reason})

    # -- requests ------------------------------------------------------------------
    async def request(self, device_id: str, mtype: str, body: Any = None, timeout: float | None = None) -> dict:
        """Send a request to a connected device and return its reply
        `{"type", "body", "error"}`; ControlError (counted) when there is none."""
        link = self.links.get(device_id)
        try:
            problem = check_type(mtype)
            if problem:
                raise ControlError("invalid", problem)
            if link is None or link.closed:
                raise ControlError("offline", f"device {device_id} has no management channel open "
                                              f"(its site file's control URL must point at this bench's {PATH})")
            return await self._ask(link, mtype, body, self.answer_s if timeout is None else timeout)
        except ControlError as e:
            self.hub.error(link, "control_" + e.kind, str(e))
            raise

    async def _ask(self, link: Link, mtype: str, body: Any, timeout: float) -> dict:
        channel: _Channel = link.session
        try:
            wire, nonce = encode_request(mtype, body, channel.key, link.device_id)
        except ValueError as e:
            raise ControlError("invalid", str(e)) from None
        if len(wire.encode()) > MAX_MESSAGE:
            raise ControlError("too_large", f"the request is over the {MAX_MESSAGE} byte limit of a message")
        future = asyncio.get_running_loop().create_future()
        writing = sent = False
        self.hub.counts["control:" + (mtype if mtype in KNOWN else "other")] += 1
        try:
            async with asyncio.timeout(timeout):
                async with channel.lock:
                    self._make_room(link, channel)
                    channel.queue.append(_Waiting(mtype, future, nonce))
                    writing = True
                    sent = await link.send(wire)
                if not sent:
                    raise ControlError("gone", f"device {link.device_id} disconnected")
                return await future
        except TimeoutError:
            if writing and not sent:
                # Cut off mid-frame (a device that stopped reading): nothing
                # more can be said on this link.
                self.hub.spawn(link.close(POLICY_VIOLATION, "not reading"))
            raise ControlError("timeout", f"device {link.device_id} did not answer {mtype} within {timeout:g}s") \
                from None
        finally:
            if not future.done():
                future.cancel()     # whatever ended the wait: the queue entry is abandoned

    def _make_room(self, link: Link, channel: _Channel) -> None:
        """A full queue makes room by forgetting abandoned requests at its
        head (the device never answered them); else the device is busy."""
        queue = channel.queue
        while len(queue) >= MAX_WAITING and queue[0].future.done():
            queue.popleft()
            self.hub.count_error("control_unanswered")
        if len(queue) >= MAX_WAITING:
            raise ControlError("busy", f"device {link.device_id} has {len(queue)} requests waiting already; "
                                       "try again when it has answered them")

    # -- what a device sends -----------------------------------------------------------
    def receive(self, link: Link, text: str) -> None:
        """One text frame from a device: the reply to the oldest waiting
        request, or dropped."""
        try:
            msg = strict_json.parse(text)
        except ValueError as e:
            self._drop(link, "malformed_json", f"malformed JSON: {e}")
            return
        if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
            self._drop(link, "invalid", "a reply must be a JSON object with a string 'type'")
            return
        mtype = msg["type"]
        queue = link.session.queue
        # Abandoned requests the device skipped: it answers a later one now.
        while queue and queue[0].future.done() and queue[0].type != mtype:
            queue.popleft()
            self.hub.count_error("control_unanswered")
        if not queue or queue[0].type != mtype:
            expected = f"the reply to {queue[0].type}" if queue else "nothing (no request is waiting)"
            self._drop(link, "control_unsolicited" if not queue else "control_mismatch",
                       f"dropped a {mtype[:codec.MAX_TYPE]!r} message: expected {expected}")
            return
        waiting = queue.popleft()
        key = link.session.key
        if key is not None and signing.open_reply(key, link.device_id, waiting.nonce, text) is None:
            # Not the device's word for this request: a refusal (the device
            # signs only what it took: a bad signature, a replay, a stale
            # ts), or a forged or altered reply. Its body goes nowhere, the
            # state included; what it says is shown as unverified.
            said = _error_text(msg.get("error"))[:200]
            self.hub.error(link, "control_unsigned_reply", f"a {mtype!r} reply not signed by the device for its "
                                                           "request (a refusal, or altered on the way)")
            reply = {"type": mtype, "body": None,
                     "error": "unverified reply, not signed by the device's control key for this request (the "
                              "device refused the request, or the reply was altered on the way)"
                              + (f"; it says: {said}" if said else "")}
            if not waiting.future.done():
                waiting.future.set_result(reply)
            return
        reply = {"type": mtype, "body": msg.get("body"), "error": _error_text(msg.get("error"))}
        if mtype == "app/state" and not reply["error"] and isinstance(reply["body"], dict):
            self.hub.store.set_control_state(link.device_id, reply["body"])
        if waiting.future.done():
            self.hub.count_error("control_late")
            return
        waiting.future.set_result(reply)

    def binary(self, link: Link) -> None:
        self._drop(link, "binary", "binary frames are not part of the API (base64 goes in a text message)")

    async def shutdown(self) -> None:
        await asyncio.gather(*(link.close(GOING_AWAY, "bench shutting down") for link in list(self.links.values())),
                             return_exceptions=True)
