"""The developer-center WebSocket API on the bench (`GET /ws/dc/v1`; the
seed 003 document, docs/protocols/developer-center.md): app sessions that
log in with an app user's token, subscribe to the devices bound to that
user, get their messages (ONLINE, STATUS, RAW-UPLINK, MATTR-REPORT,
MEVENT-*, LOCATION-INFO-KV, ENDUSER) and send them commands (READ-ATTR,
WRITE-ATTR, EXE-SERV, RAW) answered by send_ack.

The messages are devcenter_codec.py's; the Thing model mapping is
thing_map.py's; devices are reached through the hub (route_command, the
command_result broadcast), so a command reaches a device whatever protocol
it speaks. A send with isCache to an offline device waits in memory (at
most MAX_CACHED per device, cacheTime seconds) and goes out when the device
comes online; the bench forgets it on restart.

Each session watches the hub's broadcasts (hub.watch) and sees only the
devices bound to its user; DevCenter watches them once more for what is not
a session's: command results and devices coming online.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from agent import records

from . import devcenter_codec as codec
from . import strict_json, thing_map
from .devcenter_codec import DcError, Push
from .hub import POLICY_VIOLATION, CommandRefused, Hub, Link, User

log = logging.getLogger("doorlink.bench")

PATH = "/ws/dc/v1"
PRODUCT_KEY = "doorlink"     # the bench's one product, where no client named a product key
HEARTBEAT_TIMEOUT_S = 130.0  # the document: "Heartbeat interval: 40 s, Timeout time 130 s"
PING_EVERY_S = 40.0          # WebSocket pings (a browser answers them by itself)
ANSWER_S = 30.0              # QoS 1: how long a device has to answer a command
MAX_CACHED = 32              # isCache sends waiting for one offline device (4027 past it)
SENDS_PER_S = 20             # sends one session may make in a second (4019 past it)
MAX_LOGIN_FAILURES = 3       # wrong tokens on one connection before it is closed
MAX_FRAME = 1 << 20          # aiohttp's cap; the app's (hub.max_message) is answered with 4006
CLOSE_TIMEOUT = 2.0
PROTOCOL_ERROR = 1002

# The parts of a telemetry sample that are not data points: module status
# (STATUS kv, the document's battery, voltage, signal_strength ...) but for
# `location`, which is a LOCATION INFO-KV message of its own.
LOCATION_KEY = "location"
_POINT_TELEMETRY = ("temperature", "humidity")


# -- what a broadcast means to a developer-center client -----------------------------
def pushes_for(obj: dict) -> list[Push]:
    """One hub broadcast about a device -> the messages it makes (ONLINE
    aside: its value depends on what the session saw before)."""
    kind = obj.get("type")
    payload = obj.get("payload")
    packet_id = obj["id"] if isinstance(obj.get("id"), int) and not isinstance(obj.get("id"), bool) else 0
    out: list[Push] = []
    if kind == records.TELEMETRY and isinstance(payload, dict):
        module = {k: v for k, v in payload.items() if k not in _POINT_TELEMETRY and k != LOCATION_KEY}
        if module:
            out.append(codec.status(packet_id, module))
        where = payload.get(LOCATION_KEY)
        if isinstance(where, dict) and where:
            out.append(codec.location(packet_id, where, str(where.get("type", "LBS"))[:16],
                                      str(where.get("subType", "LBS"))[:16]))
    if kind == records.EVENT and obj.get("event_type") == thing_map.RAW_COMMAND and isinstance(payload, dict):
        try:
            data = base64.b64decode(str(payload.get("data", "")).encode("ascii"), validate=True)
        except (ValueError, UnicodeEncodeError):
            data = None
        if data is not None:
            out.append(codec.raw_uplink(packet_id, data))
    attrs = {} if kind == "device_status" else thing_map.attrs_from_broadcast(obj)
    if attrs:
        out.append(codec.mattr_report(packet_id, tsl_kv(attrs)))
    event = thing_map.event_from_broadcast(obj)
    if event is not None:
        level, code, params = event
        out.append(codec.mevent(level, packet_id, code, params))
    return out


def tsl_kv(attrs: dict[str, Any]) -> dict[str, Any]:
    """Data points by Gizwits name -> by TSL id (MATTR-REPORT kv)."""
    return {thing_map.BY_NAME[name].tsl_id: value for name, value in attrs.items() if name in thing_map.BY_NAME}


def _point_of(item: codec.KvItem) -> thing_map.Point:
    for ident in (item.ident, item.name):
        if isinstance(ident, str):
            with contextlib.suppress(ValueError):
                return thing_map.point(ident)
    raise DcError(4028, f"no data point {item.ident if item.ident is not None else item.name!r} "
                        f"(TSL ids: {', '.join(p.tsl_id for p in thing_map.POINTS)})")


def _typed(item: codec.KvItem, point: thing_map.Point) -> Any:
    if item.type is not None and item.type.upper() != point.tsl_type:
        raise DcError(4028, f"{point.tsl_id} is of TSL type {point.tsl_type}, not {item.type}")
    value = codec.coerce(item.value, point.type)
    if point.type == thing_map.ENUM and isinstance(value, int) and 0 <= value < len(point.values):
        value = point.values[value]   # an enum sent by its number
    return value


_PARAM_TYPES = {"TEXT": "string", "INT": "int32", "ENUM": "enum"}


def _service_params(value: Any, service: thing_map.Service) -> dict:
    """EXE-SERV parameters: an object, or the TSL way, a list of {"id", "value"}
    (as JSON text too); values as text are made the parameter's type."""
    if isinstance(value, str):
        try:
            value = strict_json.parse(value) if value else {}
        except ValueError:
            raise DcError(4028, f"the parameters of service {service.tsl_id} are not JSON") from None
    if value is None:
        value = {}
    if isinstance(value, list):
        items = codec.parse_kv(value) if value else ()
        value = {str(i.ident if i.ident is not None else i.name): i.value for i in items}
    if not isinstance(value, dict):
        raise DcError(4028, f"the parameters of service {service.tsl_id} are an object or a list of "
                            "{\"id\", \"value\"}")
    types = dict(service.params)
    out = {}
    for name, v in value.items():
        kind = _PARAM_TYPES.get(types.get(name, ""))
        if kind is not None and not (kind == "string" and not isinstance(v, str)):
            v = codec.coerce(v, kind)
        elif isinstance(v, str) and types.get(name) in ("ARRAY", "STRUCT"):
            try:
                v = strict_json.parse(v)
            except ValueError:
                raise DcError(4028, f"parameter {name} of service {service.tsl_id} is not JSON") from None
        out[name] = v
    return out


def commands_for(send: codec.Send) -> list[tuple[str, dict]]:
    """The agent commands a send becomes (none for READ-ATTR); DcError
    4028 when its kv does not fit the Thing model."""
    if send.type == "RAW":
        return [(thing_map.RAW_COMMAND, {"data": base64.b64encode(send.raw or b"").decode("ascii")})]
    if send.type == "READ-ATTR":
        for item in send.kv or ():
            _point_of(item)
        return []
    assert send.kv is not None   # the codec asks for kv on WRITE-ATTR and EXE-SERV
    try:
        if send.type == "WRITE-ATTR":
            attrs = {}
            for item in send.kv:
                point = _point_of(item)
                attrs[point.name] = _typed(item, point)
            return thing_map.commands_for_write(attrs)
        out = []
        for item in send.kv:
            ident = item.ident if isinstance(item.ident, str) else item.name
            service = thing_map.SERVICE_BY_ID.get(ident) if isinstance(ident, str) else None
            if service is None:
                raise DcError(4028, f"no service {ident!r} (services: {', '.join(thing_map.SERVICE_BY_ID)})")
            out.append(thing_map.service_command(service.tsl_id, _service_params(item.value, service)))
        return out
    except ValueError as e:
        raise DcError(4028, str(e)) from None


# -- sends on their way -------------------------------------------------------------------
@dataclass
class Pending:
    """A send accepted: who asked, what it became, when (ms)."""

    session: Session
    send: codec.Send
    text: str            # the request as it came (an error's reqMsg)
    ticket: str
    created_at: int
    commands: list[tuple[str, dict]]
    expiry: asyncio.TimerHandle | None = None


@dataclass
class Subscription:
    product_key: str
    types: set[str] = field(default_factory=set)


class Session:
    """One client connection: its user once logged in, its subscriptions."""

    def __init__(self, dc: DevCenter, link: Link) -> None:
        self.dc = dc
        self.link = link
        self.user: User | None = None
        self.subs: dict[str, Subscription] = {}
        self.online: dict[str, bool] = {}     # device -> last ONLINE state told (re-online = 2)
        self.login_failures = 0
        self._sends: collections.deque[float] = collections.deque()

    @property
    def uid(self) -> str:
        return self.user.uid if self.user else ""

    def bound(self) -> set[str]:
        return set(self.dc.hub.store.devices_of(self.uid)) if self.user else set()

    def product_key(self, device_id: str) -> str:
        sub = self.subs.get(device_id)
        return sub.product_key if sub else PRODUCT_KEY

    async def push(self, device_id: str, push: Push) -> None:
        await self.link.send(codec.message(push, self.product_key(device_id), device_id))

    async def on_broadcast(self, obj: dict) -> None:
        """A hub broadcast: the messages it makes for this session's user."""
        device_id = obj.get("device_id")
        if not isinstance(device_id, str):
            return
        if obj.get("type") == "binding_changed":
            if obj.get("uid") == self.uid:
                bound = bool(obj.get("bound"))
                await self.push(device_id, codec.user_bind(bound, self.uid, self.user.appid if self.user else ""))
                if not bound:
                    self.subs.pop(device_id, None)
            return
        sub = self.subs.get(device_id)
        if sub is None:
            return
        if obj.get("type") == "device_status":
            now_online = obj.get("status") == "online"
            value = (2 if self.online.get(device_id) else 1) if now_online else 0
            self.online[device_id] = now_online
            if "ONLINE" in sub.types:
                await self.push(device_id, codec.online(value))
            return
        for push in pushes_for(obj):
            if push.kind in sub.types:
                await self.push(device_id, push)

    def rate_limited(self, now: float) -> bool:
        while self._sends and now - self._sends[0] >= 1.0:
            self._sends.popleft()
        if len(self._sends) >= self.dc.sends_per_s:
            return True
        self._sends.append(now)
        return False


class DevCenter:
    """The API's state: live sessions, sends waiting for a device, command
    results awaited. Tests shorten `heartbeat_s`, `ping_s`, `answer_s`
    (and change `sends_per_s`)."""

    def __init__(self, hub: Hub, mark_authenticated: Callable[[Any], None] | None = None,
                 login_deadline_s: float = 10.0) -> None:
        self.hub = hub
        self.heartbeat_s = HEARTBEAT_TIMEOUT_S
        self.ping_s = PING_EVERY_S
        self.answer_s = ANSWER_S
        self.sends_per_s = SENDS_PER_S
        self.login_deadline_s = login_deadline_s
        self._mark_authenticated = mark_authenticated
        self.sessions: set[Session] = set()
        self.cached: dict[str, list[Pending]] = {}
        self._tasks: set[asyncio.Task] = set()
        hub.watch(self._on_broadcast)

    # -- the connection ------------------------------------------------------------------
    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=False, max_msg_size=MAX_FRAME, timeout=CLOSE_TIMEOUT)
        await ws.prepare(request)

        async def close(code: int, reason: str) -> None:
            await ws.close(code=code, message=reason.encode())

        peer = request.transport.get_extra_info("peername") if request.transport else None
        link = Link(f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else "?", ws.send_str, close)
        session = Session(self, link)
        self.sessions.add(session)
        pinger = asyncio.create_task(self._ping(ws))
        loop = asyncio.get_running_loop()
        opened = heard = loop.time()
        try:
            while not link.closed:
                deadline = heard + self.heartbeat_s
                if session.user is None:
                    deadline = min(deadline, opened + self.login_deadline_s)
                try:
                    frame = await ws.receive(timeout=max(deadline - loop.time(), 0))
                except TimeoutError:
                    await self._timed_out(session, loop.time() - heard >= self.heartbeat_s)
                    break
                heard = loop.time()
                if frame.type == WSMsgType.TEXT:
                    await self._text(session, request, frame.data)
                elif frame.type == WSMsgType.PING:
                    await ws.pong(frame.data)
                elif frame.type == WSMsgType.BINARY:
                    await link.send(codec.error(4006, "", "binary frames are not taken: send JSON text"))
                elif frame.type == WSMsgType.ERROR:
                    self.hub.error(link, "protocol", f"developer-center session: {ws.exception()}")
                    break
                elif frame.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
                    break
        finally:
            pinger.cancel()
            self.sessions.discard(session)
            self.hub.unwatch(session.on_broadcast)
            link.closed = True
        return ws

    async def _ping(self, ws: web.WebSocketResponse) -> None:
        """WebSocket pings: a browser answers them, and that answer is a heartbeat."""
        with contextlib.suppress(Exception):
            while not ws.closed:
                await asyncio.sleep(self.ping_s)
                await ws.ping()

    async def _timed_out(self, session: Session, heartbeat: bool) -> None:
        if heartbeat:
            reason = f"heartbeat timeout: nothing received for {self.heartbeat_s:g}s (send pong every 40s)"
        else:
            reason = f"no login within {self.login_deadline_s:g}s"
        self.hub.error(session.link, "dc_timeout", f"developer-center session {session.link.peer}: {reason}")
        await session.link.close(POLICY_VIOLATION, reason)

    async def _text(self, session: Session, request: web.Request, text: str) -> None:
        self.hub.counts["dc_frames"] += 1
        try:
            replies = await self.receive(session, text)
        except DcError as e:
            self.hub.error(session.link, "dc_refused", f"developer-center {session.link.peer}: {e}")
            replies = [codec.error(e.code, text, e.detail)]
        except Exception as e:  # noqa: BLE001 - the last net: 4001, one log line, never a traceback
            self.hub.count_error("internal")
            log.error("developer-center: could not process a message from %s: %s: %s", session.link.peer,
                      type(e).__name__, str(e)[:200])
            replies = [codec.error(4001, text)]
        for reply in replies:
            await session.link.send(reply)
        if session.login_failures >= MAX_LOGIN_FAILURES:
            await session.link.close(POLICY_VIOLATION, f"{MAX_LOGIN_FAILURES} failed logins")
        elif session.user is not None and self._mark_authenticated is not None:
            self._mark_authenticated(request.protocol)

    # -- requests ---------------------------------------------------------------------------
    async def receive(self, session: Session, text: str) -> list[str]:
        """One text frame -> the replies (DcError for a refused one)."""
        req = codec.parse(text, self.hub.max_message)
        if isinstance(req, codec.Pong):
            return []
        if isinstance(req, codec.Login):
            return await self._login(session, req)
        if session.user is None:
            raise DcError(4010, "log in first: {\"cmd\": \"login\", \"data\": {\"token\": ...}}")
        if isinstance(req, codec.Subscribe):
            return self._subscribe(session, req)
        if isinstance(req, codec.Unsubscribe):
            return self._unsubscribe(session, req)
        return self._send(session, req, text)

    async def _login(self, session: Session, req: codec.Login) -> list[str]:
        if session.user is not None:
            raise DcError(4009, f"logged in already as {session.uid}")
        if self.hub.token_checks_full():
            return [codec.login_resp(4016)]       # too many token checks at once: try again
        busy = self.hub.errors["auth_busy"]
        user = await self.hub.user_for_token(req.token)
        if user is None:
            if self.hub.errors["auth_busy"] > busy:
                # a check was refused meanwhile (this login's or another's): not a
                # verdict on the token, so "try again", not 4008
                return [codec.login_resp(4016)]
            session.login_failures += 1
            self.hub.error(session.link, "auth", f"developer-center login from {session.link.peer}: "
                                                 "token validation failed")
            return [codec.login_resp(4008)]
        session.user = user
        self.hub.watch(session.on_broadcast, lambda: session.link.close(POLICY_VIOLATION, "not reading"))
        self.hub.notify("app_login", {"api": "developer-center", "uid": user.uid, "peer": session.link.peer})
        return [codec.login_resp()]

    def _subscribe(self, session: Session, req: codec.Subscribe) -> list[str]:
        bound = session.bound()
        results, now_online = [], []
        for t in req.targets:
            code = t.code
            if code == codec.SUCC and t.device_key not in bound:
                code = 4011
            if code == codec.SUCC:
                sub = session.subs.get(t.device_key)
                if sub is None:
                    sub = session.subs[t.device_key] = Subscription(t.product_key)
                    session.online[t.device_key] = t.device_key in self.hub.devices
                sub.product_key = t.product_key
                sub.types.update(t.message_types)
                if "ONLINE" in t.message_types and t.device_key not in now_online:
                    now_online.append(t.device_key)
            results.append((t.product_key, t.device_key, code))
        replies = [codec.subscribe_resp(results)]
        # Where the device stands now, so a client need not wait for a change.
        replies += [codec.message(codec.online(int(self.hub.devices.get(d) is not None)), session.product_key(d), d)
                    for d in now_online]
        return replies

    def _unsubscribe(self, session: Session, req: codec.Unsubscribe) -> list[str]:
        if not session.subs:
            raise DcError(4013, "this session subscribed to no device")
        results = []
        for t in req.targets:
            code = t.code
            if code == codec.SUCC and t.device_key not in session.subs:
                code = 4014
            if code == codec.SUCC:
                del session.subs[t.device_key]
            results.append((t.product_key, t.device_key, code))
        return [codec.unsubscribe_resp(results)]

    def _send(self, session: Session, send: codec.Send, text: str) -> list[str]:
        loop = asyncio.get_running_loop()
        if session.rate_limited(loop.time()):
            raise DcError(4019, f"at most {self.sends_per_s} sends a second")
        if send.device_key not in session.bound():
            raise DcError(4011)
        if not self.hub.store.known_device(send.device_key):
            raise DcError(4018, f"the bench has no device {send.device_key} (doorlink bench add-device)")
        pending = Pending(session, send, text, codec.new_ticket(), codec.now_ms(), commands_for(send))
        if send.device_key in self.hub.devices:
            self._spawn(self._deliver(pending))
            return []
        if not send.is_cache:
            raise DcError(4030, "send it with \"isCache\": true to have it delivered when the device comes online")
        waiting = self.cached.setdefault(send.device_key, [])
        if len(waiting) >= MAX_CACHED:
            raise DcError(4027, f"{MAX_CACHED} sends wait for this device already")
        waiting.append(pending)
        pending.expiry = loop.call_later(send.cache_time, self._expire, pending)
        return []

    # -- delivery -----------------------------------------------------------------------------
    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _expire(self, pending: Pending) -> None:
        waiting = self.cached.get(pending.send.device_key, [])
        if pending in waiting:
            waiting.remove(pending)
            self._spawn(self._ack(pending, codec.now_ms(), False))

    async def _flush(self, device_id: str) -> None:
        """The device came online: what waited for it goes, in order."""
        waiting = self.cached.pop(device_id, [])
        for pending in waiting:
            if pending.expiry is not None:
                pending.expiry.cancel()
        for pending in waiting:
            await self._deliver(pending)

    async def _deliver(self, pending: Pending) -> None:
        send, device_id = pending.send, pending.send.device_key
        sent_at = codec.now_ms()
        if pending.session.user is not None and device_id not in pending.session.bound():
            await self._ack(pending, sent_at, False)     # unbound while it waited
            return
        if send.type == "READ-ATTR":
            attrs = self.hub.attrs(device_id)
            wanted = {_point_of(i).name for i in send.kv} if send.kv else set(attrs)
            await pending.session.push(device_id, codec.mattr_report(0, tsl_kv(
                {k: v for k, v in attrs.items() if k in wanted})))
            await self._ack(pending, sent_at, True, sent_at)
            return
        ok = True
        for n, (name, payload) in enumerate(pending.commands):
            try:
                ok = await self._command(device_id, name, payload, send.qos)
            except CommandRefused as e:
                self.hub.error(None, "dc_send", f"developer-center send to {device_id}: {e}")
                if n == 0:
                    # Nothing reached the device: refused as a send is, with an error
                    # (4017: its protocol cannot say it; 4030: gone meanwhile).
                    code = 4030 if e.kind == "offline" else 4017
                    await pending.session.link.send(codec.error(code, pending.text, str(e)))
                    return
                ok = False
            if not ok:
                break
        await self._ack(pending, sent_at, ok)

    async def _command(self, device_id: str, name: str, payload: dict, qos: int) -> bool:
        """Send one command (CommandRefused if it cannot go); True when the
        device says it is done (QoS 1) or once it is sent (QoS 0)."""
        if qos == 0:
            await self.hub.route_command(None, device_id, name, payload, self.hub.command_id())
            return True
        try:
            return (await self.hub.ask(None, device_id, name, payload, self.answer_s)).get("ok") is True
        except TimeoutError:
            return False

    async def _ack(self, pending: Pending, sent_at: int, ok: bool, ack_at: int | None = None) -> None:
        send = pending.send
        await pending.session.link.send(codec.send_ack(
            pending.ticket, send.msg_id, send.product_key, send.device_key, pending.created_at, sent_at,
            codec.now_ms() if ack_at is None else ack_at, ok))

    async def _on_broadcast(self, obj: dict) -> None:
        """What is not a session's: devices coming online (their cached sends go)."""
        device_id = obj.get("device_id")
        if obj.get("type") == "device_status" and obj.get("status") == "online" and device_id in self.cached:
            self._spawn(self._flush(device_id))

    async def shutdown(self, _app: web.Application | None = None) -> None:
        self.hub.unwatch(self._on_broadcast)
        for waiting in self.cached.values():
            for pending in waiting:
                if pending.expiry is not None:
                    pending.expiry.cancel()
        self.cached.clear()
        await asyncio.gather(*(s.link.close(1001, "bench shutting down") for s in list(self.sessions)),
                             return_exceptions=True)
        for task in list(self._tasks):
            task.cancel()


KEY = web.AppKey("bench_devcenter", DevCenter)


def install(app: web.Application, hub: Hub, mark_authenticated: Callable[[Any], None] | None = None,
            login_deadline_s: float = 10.0) -> DevCenter:
    """Serve the API at PATH on `app` (app[KEY] is its DevCenter)."""
    dc = app[KEY] = DevCenter(hub, mark_authenticated, login_deadline_s)
    app.router.add_get(PATH, dc.handle)
    app.on_shutdown.append(dc.shutdown)
    return dc
