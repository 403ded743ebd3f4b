"""The Gizwits app WebSocket API on the bench (`GET /ws/app/v1`; seed 002,
docs/protocols/gizwits-app.md): apps written for the Gizwits cloud log in
as a bench app user, subscribe to the devices bound to it, read and write
their data points (thing_map.py), pass raw frames through, and hear of
devices coming and going and of bindings changing.

The messages are gizwits_codec.py's. Devices are reached through the hub
(route_command; the answer is the command_result broadcast), so an app
commands a device whatever protocol it speaks. Each session watches the
hub's broadcasts (hub.watch) and passes on only what concerns the devices
its user has bound and it has subscribed to.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from agent import records

from . import gizwits_codec as codec
from . import thing_map
from .hub import GOING_AWAY, POLICY_VIOLATION, CommandRefused, Hub, Link, User

log = logging.getLogger("doorlink.bench")

PATH = "/ws/app/v1"
ANSWER_S = 30.0            # how long a device has to answer a write or raw command
MAX_PENDING = 8            # commands of one session waiting for their device (BUSY past it)
MAX_LOGIN_FAILURES = 4     # the JS SDK's login and its 3 retries; the next failure closes the connection
HEARTBEAT_GRACE = 1.5      # silence allowed: heartbeat_interval x this (MQTT's keep-alive rule)
MAX_UNACKED = 64           # s2c_noti with req_sn waiting for c2s_ack (the oldest is forgotten past it)
MAX_FRAME = 1 << 20        # aiohttp's cap; the app's (hub.max_message) is answered with TOO_LARGE
CLOSE_TIMEOUT = 2.0
INTERNAL_ERROR = 1011
# Data points whose change an app must acknowledge (c2s_ack): the alarms.
ACKED_POINTS = frozenset({"alarm_forced", "alarm_held_open", "alarm_tamper"})


def _peer(request: web.Request) -> str:
    peername = request.transport.get_extra_info("peername") if request.transport else None
    if isinstance(peername, tuple) and len(peername) >= 2:
        return f"{peername[0]}:{peername[1]}"
    return str(request.remote or "?")


@dataclass
class Pending:
    """An app's write or raw command on its way: the agent commands still
    unanswered, what to answer with, and when to give up."""

    did: str
    kind: str                       # "write" or "raw"
    req_sn: int | None              # c2s_write's req_sn (answered as res_sn)
    raw_sn: int | None              # a 0x93 frame's sn (answered by a 0x94 frame)
    left: int = 0                   # agent commands not answered yet
    done: dict[str, Any] = field(default_factory=dict)   # agent command -> its result
    error: str | None = None


class Session:
    """One app connection."""

    def __init__(self, api: Gizwits, link: Link, protocol: object) -> None:
        self.api = api
        self.hub = api.hub
        self.link = link
        self.protocol = protocol            # the aiohttp handler: the connection guard knows it by it
        self.codec = codec.Codec(thing_map.RAW_MAX)
        self.user: User | None = None
        self.auto_subscribe = True
        self.heartbeat_s: float | None = None
        self.subscribed: set[str] = set()
        self.asks: set[asyncio.Task] = set()   # agent commands waiting for their device (hub.ask)
        self.unacked: dict[int, str] = {}   # req_sn of an s2c_noti -> its did
        self.failures = 0
        self.watching = False
        loop = asyncio.get_running_loop()
        self.login_at = self.last_heard = loop.time()
        self._sns = itertools.count(1)
        self._poke = asyncio.Event()        # the watchdog's deadline has changed

    # -- sending ---------------------------------------------------------------------------
    async def send(self, text: str) -> None:
        await self.link.send(text)

    async def invalid(self, code: int, msg: str, **extra: Any) -> None:
        self.hub.error(self.link, "gizwits", f"app {self.link.peer}: {code} {msg}")
        await self.send(codec.invalid_msg(code, msg, **extra))

    # -- time ----------------------------------------------------------------------------------
    def deadline(self) -> float:
        """Logged in: the heartbeat (any message counts). Not (yet, or no
        longer): a login within the login deadline of the connection or of
        the last login_req; pings do not hold an anonymous connection open."""
        if self.user is None or self.heartbeat_s is None:
            return self.login_at + self.api.login_deadline_s
        return self.last_heard + self.heartbeat_s * HEARTBEAT_GRACE

    async def watchdog(self) -> None:
        """Closes a session that stays silent past its heartbeat (or does
        not log in in time)."""
        loop = asyncio.get_running_loop()
        while not self.link.closed:
            now = loop.time()
            if now >= self.deadline():
                if self.user is None:
                    await self.invalid(codec.NOT_LOGGED_IN, f"no login within {self.api.login_deadline_s:g}s")
                    await self.link.close(POLICY_VIOLATION, "no login in time")
                else:
                    await self.invalid(codec.HEARTBEAT_TIMEOUT,
                                       f"nothing received within {self.heartbeat_s * HEARTBEAT_GRACE:g}s "
                                       f"(heartbeat_interval {self.heartbeat_s:g}s): closing")
                    await self.link.close(POLICY_VIOLATION, "heartbeat timeout")
                return
            wake = self.deadline()
            self._poke.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._poke.wait(), min(max(wake - now, 0.05), 5.0))

    # -- what the app sends ------------------------------------------------------------------------
    async def receive(self, text: str) -> None:
        self.last_heard = asyncio.get_running_loop().time()
        self.hub.counts["gizwits"] += 1
        if len(text) > self.hub.max_message:
            await self.invalid(codec.TOO_LARGE, f"message of {len(text)} characters is over the bench's "
                                                f"{self.hub.max_message} limit")
            return
        event = self.codec.receive(text)
        if isinstance(event, codec.Invalid):
            await self.invalid(event.error_code, event.msg, **event.extra)
        elif isinstance(event, codec.Ping):
            await self.send(codec.pong())
        elif isinstance(event, codec.Login):
            await self._login(event)
        elif isinstance(event, codec.Subscribe):
            await self._subscribe(event)
        elif isinstance(event, codec.Read):
            await self._read(event)
        elif isinstance(event, codec.Write):
            await self._write(event)
        elif isinstance(event, codec.Raw):
            await self._raw(event)
        elif isinstance(event, codec.Ack):
            await self._ack(event)

    async def _login(self, ev: codec.Login) -> None:
        self.login_at = asyncio.get_running_loop().time()
        user = await self.hub.check_user(ev.appid, ev.uid, ev.token)
        if user is None:
            self.failures += 1
            self._logout()
            self.hub.error(self.link, "auth", f"app {self.link.peer}: login failed for uid {ev.uid[:64]!r}")
            await self.send(codec.login_res(False))
            await self.send(codec.invalid_msg(codec.LOGIN_FAILED, "login failed: wrong appid, uid or token"))
            if self.failures >= MAX_LOGIN_FAILURES:
                await self.link.close(POLICY_VIOLATION, f"{MAX_LOGIN_FAILURES} failed logins")
            return
        if self.user is not None and self.user.uid != user.uid:
            self._logout()
        self.user, self.auto_subscribe, self.heartbeat_s = user, ev.auto_subscribe, ev.heartbeat_s
        self.codec.logged_in(ev.p0_type)
        self._poke.set()
        if self.api.mark_authenticated is not None:
            self.api.mark_authenticated(self.protocol)
        if not self.watching:
            self.hub.watch(self.on_broadcast, self._dropped)
            self.watching = True
        await self.send(codec.login_res(True))
        self.hub.notify("app_login", {"peer": self.link.peer, "api": "gizwits", "uid": user.uid})
        if ev.auto_subscribe:
            for did in self.hub.store.devices_of(user.uid):
                await self._subscribed(did)

    def _logout(self) -> None:
        self.user = None
        self.heartbeat_s = None
        self.codec.logged_in(None)
        self.subscribed.clear()
        self.forget_asks()
        self.unacked.clear()

    def forget_asks(self) -> None:
        """Commands still waiting: their answers go to nobody now."""
        for task in self.asks:
            task.cancel()
        self.asks.clear()

    def _dropped(self) -> Any:
        self.watching = False
        return self.link.close(GOING_AWAY, "not reading")

    async def _subscribed(self, did: str) -> None:
        self.subscribed.add(did)
        await self.send(codec.online_status(did, did in self.hub.devices))

    def _bound(self) -> set[str]:
        return set(self.hub.store.devices_of(self.user.uid)) if self.user is not None else set()

    async def _subscribe(self, ev: codec.Subscribe) -> None:
        bound = self._bound()
        ok = [did for did in ev.dids if did in bound]
        failed = [(did, codec.NOT_BOUND, f"device {did} is not bound to this user") for did in ev.dids
                  if did not in bound]
        await self.send(codec.subscribe_res(ok, failed + list(ev.failed)))
        for did in ok:
            await self._subscribed(did)

    async def _target(self, did: str, online: bool, **extra: Any) -> bool:
        """May this session command `did` now? Answers s2c_invalid_msg if not."""
        if did not in self._bound():
            await self.invalid(codec.NOT_BOUND, f"device {did} is not bound to this user", did=did, **extra)
            return False
        if did not in self.subscribed:
            await self.invalid(codec.NOT_SUBSCRIBED, f"subscribe to device {did} first (subscribe_req)", did=did,
                               **extra)
            return False
        if online and did not in self.hub.devices:
            await self.invalid(codec.DEVICE_OFFLINE, f"device {did} is offline", did=did, **extra)
            return False
        return True

    async def _read(self, ev: codec.Read) -> None:
        sn = {} if ev.req_sn is None else {"res_sn": ev.req_sn}
        if not await self._target(ev.did, online=False, **sn):
            return
        attrs = self.hub.attrs(ev.did)
        if ev.names:
            try:
                wanted = {thing_map.point(name).name for name in ev.names}
            except ValueError as e:
                await self.invalid(codec.BAD_ATTRS, f"c2s_read: {e}", did=ev.did, **sn)
                return
            attrs = {k: v for k, v in attrs.items() if k in wanted}
        await self.send(codec.noti(ev.did, attrs, res_sn=ev.req_sn))

    async def _write(self, ev: codec.Write) -> None:
        sn = {} if ev.req_sn is None else {"res_sn": ev.req_sn}
        if not await self._target(ev.did, online=False, **sn):
            return
        try:
            commands = thing_map.commands_for_write(ev.attrs)
        except ValueError as e:
            await self.invalid(codec.BAD_ATTRS, f"c2s_write: {e}", did=ev.did, **sn)
            return
        if not await self._target(ev.did, online=True, **sn):
            return
        await self._command(Pending(ev.did, "write", ev.req_sn, None), commands)

    async def _raw(self, ev: codec.Raw) -> None:
        if not await self._target(ev.did, online=True):
            return
        data = base64.b64encode(ev.data).decode("ascii")
        await self._command(Pending(ev.did, "raw", None, ev.sn),
                            [(thing_map.RAW_COMMAND, {"data": data})])

    async def _ack(self, ev: codec.Ack) -> None:
        if self.unacked.get(ev.res_sn) != ev.did:
            await self.invalid(codec.UNKNOWN_SN, f"c2s_ack: no s2c_noti of device {ev.did} with req_sn "
                                                 f"{ev.res_sn} waits for an ack", did=ev.did)
            return
        del self.unacked[ev.res_sn]

    async def _command(self, p: Pending, commands: list[tuple[str, dict]]) -> None:
        """Send the agent commands of one app request, each waiting for its
        device's answer (hub.ask) in a task of its own; the request is
        answered once all of them are."""
        sn = {} if p.req_sn is None else {"res_sn": p.req_sn}
        if len(self.asks) + len(commands) > MAX_PENDING:
            await self.invalid(codec.BUSY, f"{MAX_PENDING} commands wait for their devices already: "
                                           "wait for their answers", did=p.did, **sn)
            return
        p.left = len(commands)
        for name, payload in commands:
            task = asyncio.create_task(self._ask(p, name, payload))
            self.asks.add(task)
            task.add_done_callback(self.asks.discard)

    async def _ask(self, p: Pending, name: str, payload: dict) -> None:
        try:
            answer = await self.hub.ask(self.link, p.did, name, payload, ANSWER_S)
        except CommandRefused as e:
            code = codec.DEVICE_OFFLINE if e.kind == "offline" else codec.COMMAND_FAILED
            p.left -= 1
            if p.error is None:
                p.error = str(e)
                if not p.left:
                    sn = {} if p.req_sn is None else {"res_sn": p.req_sn}
                    await self.invalid(code, str(e), did=p.did, **sn)
                    return
            if not p.left:
                await self._failed(p, p.error)
            return
        except TimeoutError:
            answer = {"command": name, "ok": False, "error": f"no answer within {ANSWER_S:g}s"}
            p.error = p.error or f"device {p.did} did not answer within {ANSWER_S:g}s"
        await self._result(p, answer)

    async def _result(self, p: Pending, payload: dict) -> None:
        p.left -= 1
        if payload.get("ok") is True:
            p.done[str(payload.get("command"))] = payload.get("result")
        elif p.error is None:
            p.error = f"device {p.did}: {payload.get('command')} failed: {str(payload.get('error'))[:200]}"
        if p.left:
            return
        if p.error is not None:
            await self._failed(p, p.error)
        elif p.kind == "raw":
            if p.raw_sn is not None:
                await self.send(codec.s2c_raw(p.did, codec.CMD_TRANS_ACK, p.raw_sn.to_bytes(codec.SN_BYTES, "big")))
        else:
            if p.req_sn is not None:
                await self.send(codec.s2c_ack(p.did, p.req_sn))
            attrs = self.hub.attrs(p.did)
            for command, result in p.done.items():
                attrs.update(thing_map.attrs_from_result(command, result))
            await self.send(codec.noti(p.did, attrs, res_sn=p.req_sn))

    async def _failed(self, p: Pending, message: str) -> None:
        sn = {} if p.req_sn is None else {"res_sn": p.req_sn}
        await self.invalid(codec.COMMAND_FAILED, message, did=p.did, **sn)

    # -- what the hub broadcasts -------------------------------------------------------------------
    async def on_broadcast(self, obj: dict) -> None:
        if self.user is None or self.link.closed:
            return
        if obj.get("type") == "binding_changed":
            await self._binding(obj)
            return
        did = obj.get("device_id")
        if did not in self.subscribed:
            return
        kind = obj.get("type")
        if kind == "device_status":
            await self.send(codec.online_status(did, obj.get("status") == "online"))
            return
        payload = obj.get("payload")
        if kind == records.EVENT and isinstance(payload, dict):
            if obj.get("event_type") == records.COMMAND_RESULT:
                return   # an answer to a command: hub.ask() hands it to the command's task
            if obj.get("event_type") == thing_map.RAW_COMMAND:
                await self._device_raw(did, payload)
                return
        if self.codec.p0_type != codec.ATTRS_V4:
            return
        attrs = thing_map.attrs_from_broadcast(obj)
        if attrs:
            await self.send(codec.noti(did, attrs, req_sn=self._ack_sn(did) if ACKED_POINTS & set(attrs) else None))

    def _ack_sn(self, did: str) -> int:
        """A req_sn for an s2c_noti the app must acknowledge (c2s_ack)."""
        sn = next(self._sns)
        if len(self.unacked) >= MAX_UNACKED:
            self.unacked.pop(next(iter(self.unacked)))
        self.unacked[sn] = did
        return sn

    async def _device_raw(self, did: str, payload: dict) -> None:
        try:
            data = base64.b64decode(str(payload.get("data", "")), validate=True)
        except (binascii.Error, ValueError):
            self.hub.error(self.link, "gizwits", f"device {did} sent a raw event that is not base64")
            return
        await self.send(codec.s2c_raw(did, codec.CMD_TRANS_REPORT, data))

    async def _binding(self, obj: dict) -> None:
        if self.user is None or obj.get("uid") != self.user.uid:
            return
        did, bound = str(obj.get("device_id")), obj.get("bound") is True
        await self.send(codec.binding_changed(did, bound))
        if not bound:
            self.subscribed.discard(did)
        elif self.auto_subscribe:
            await self._subscribed(did)


class Gizwits:
    """The API: its sessions, and how app.py wires it (install())."""

    def __init__(self, hub: Hub, mark_authenticated: Callable[[Any], None] | None = None,
                 login_deadline_s: float = 10.0) -> None:
        self.hub = hub
        self.mark_authenticated = mark_authenticated
        self.login_deadline_s = login_deadline_s
        self.sessions: set[Session] = set()

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=MAX_FRAME, timeout=CLOSE_TIMEOUT)
        await ws.prepare(request)

        async def close(code: int, reason: str) -> None:
            await ws.close(code=code, message=reason.encode())

        link = Link(_peer(request), ws.send_str, close)
        session = Session(self, link, request.protocol)
        self.sessions.add(session)
        watchdog = asyncio.create_task(session.watchdog())
        try:
            while not link.closed:
                frame = await ws.receive()
                if frame.type == WSMsgType.TEXT:
                    try:
                        await session.receive(frame.data)
                    except Exception as e:  # noqa: BLE001 - the last net: no app's input may become a traceback
                        self.hub.count_error("internal")
                        log.error("gizwits: could not process a message from %s: %s: %s", link.peer,
                                  type(e).__name__, str(e)[:200])
                        await link.close(INTERNAL_ERROR, f"the bench could not process that message "
                                                         f"({type(e).__name__})")
                elif frame.type == WSMsgType.BINARY:
                    await session.invalid(codec.MALFORMED_JSON, "binary frames are not taken: send JSON text")
                else:   # closed, closing, or an error aiohttp has closed the socket for
                    break
        finally:
            link.closed = True
            watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watchdog
            self.hub.unwatch(session.on_broadcast)
            session.forget_asks()
            self.sessions.discard(session)
        return ws

    async def shutdown(self, _app: web.Application | None = None) -> None:
        await asyncio.gather(*(s.link.close(GOING_AWAY, "bench shutting down") for s in list(self.sessions)),
                             return_exceptions=True)


KEY = web.AppKey("bench_gizwits", Gizwits)


def install(app: web.Application, hub: Hub, mark_authenticated: Callable[[Any], None] | None = None,
            login_deadline_s: float = 10.0) -> Gizwits:
    """Serve the API at PATH on `app` (app[KEY] is its Gizwits)."""
    api = app[KEY] = Gizwits(hub, mark_authenticated, login_deadline_s)
    app.router.add_get(PATH, api.handle)
    app.on_shutdown.append(api.shutdown)
    return api
