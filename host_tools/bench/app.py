"""The bench cloud as an aiohttp application: routes, start and stop.

`GET /ws` carries the JSON WebSocket protocol (devices and admins) and the
XML biometric protocol; the first character of each text frame tells them
apart (`<` is XML, as the protocol document has it). `POST /api/device-http`
is CloudSolution 3.0. `GET /control` is the cloud-control management
channel (control.py); admins drive it with `POST /api/control/{device_id}`
(`{"type", "body"}` -> the device's reply; `?timeout=S`) and read its
last app/state with `GET /api/control/{device_id}`. `GET /api/devices` and `GET /api/stats` report;
`GET /api/records/{device_id}?kind=punch|event|telemetry|admin_log[&last=N]` returns
what the bench stored from a device (the N newest, oldest first, with `last`) (tests read it from inside MicroPython).
`PUT` / `DELETE /api/bindings/{uid}/{device_id}` bind and unbind an app
user's device on the running bench (its app sessions are told at once).
`GET /` is the browser dashboard (dashboard.py: its page, its files, its
login, all on the admin API and the admin side of /ws). Each
protocol module returns its replies; this module sends them, then lets the
hub announce what changed (hub.after_reply).

The doors, and who gets through (README "Security"):
- every request: a browser `Origin` must be on the allow-list (by default
  only the bench's own loopback origins), so a web page cannot drive the
  bench; on a bench that lets admins in without a token (loopback, no
  --require-auth) the `Host` must be a loopback name too, so a page that
  rebinds its own DNS name to 127.0.0.1 cannot read the API;
- `/ws`: an `Authorization: Bearer` admin token on the upgrade is checked
  there (a wrong one is a 401); then the link must register or subscribe
  within `auth_deadline_s`;
- `/api/devices`, `/api/stats`, `/api/records`, `/api/control`: an admin
  token (`Authorization: Bearer`) when the policy requires admin
  authentication;
- `/control`: the device's `X-Device-Id` and its token as
  `Authorization: Bearer`, always (as a device's register on /ws), checked
  before the upgrade (a 401 otherwise);
- `/api/device-http`: the device's token, checked by cloudsolution.py; the
  body must arrive within `body_deadline_s`.
Connections that have not authenticated are capped and given a deadline for
their first request (limits.py). Whatever a peer sends is answered or closed
with a reason and counted; an unexpected failure is logged in one line and
answered, never a traceback or an HTTP 500.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from aiohttp import WSMsgType, web

from agent import records
from host_tools.cli_common import is_loopback
from host_tools.signals import stop_event

from . import cloudsolution, control, dashboard, devcenter, gizwits, json_ws, strict_json, xml_ws
from .hub import ANONYMOUS, Hub, Link, Observer, Policy
from .limits import AcceptErrors, ConnectionGuard, Limits, RateLimited
from .store import BenchStore

log = logging.getLogger("doorlink.bench")

# aiohttp's own limit sits well above the app limit so an oversized message
# gets a readable error instead of a bare 1009 close.
HARD_MAX_MESSAGE = 1 << 20
# A close handshake with a client that never answers must not stall a
# replacement registration or shutdown for aiohttp's default 10 s.
CLOSE_TIMEOUT = 2.0
SWEEP_EVERY_S = 10.0
# An unread request body is drained this long before the connection closes
# (aiohttp's default, 10 s, would let a slow sender hold it).
LINGER_S = 2.0
TRY_AGAIN_LATER = 1013     # WebSocket close code (RFC 6455 registry)
INTERNAL_ERROR = 1011


@dataclass(frozen=True)
class Gate:
    """The app's door policy: browser origins let in (besides the bench's
    own), whether requests must name a loopback host (a bench that lets
    admins in without a token), and the deadlines."""

    allow_origins: frozenset[str]
    loopback_host_only: bool
    limits: Limits


HUB = web.AppKey("bench_hub", Hub)
HTTP_DEVICES = web.AppKey("bench_cloudsolution", cloudsolution.CloudSolution)
CONTROL = web.AppKey("bench_control", control.Control)
GATE = web.AppKey("bench_gate", Gate)
GUARD = web.AppKey("bench_guard", ConnectionGuard)
SAID = web.AppKey("bench_said", RateLimited)   # one log line per interval for unexpected failures


def _peer(request: web.Request) -> str:
    peername = request.transport.get_extra_info("peername") if request.transport else None
    if isinstance(peername, tuple) and len(peername) >= 2:
        return f"{peername[0]}:{peername[1]}"
    return str(request.remote or "?")


def _bearer(request: web.Request) -> str | None:
    """The token of an `Authorization: Bearer TOKEN` header; None without
    one. Any other Authorization is refused (401): it cannot be checked."""
    value = request.headers.get("Authorization")
    if value is None:
        return None
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _refused(request, 401, "auth", "Authorization must be 'Bearer TOKEN'")
    return token.strip()


def _refused(request: web.Request, status: int, kind: str, message: str) -> web.HTTPException:
    """Count and report a refused request: the HTTP error to raise."""
    request.app[HUB].error(None, kind, f"{message} (from {_peer(request)}, {request.method} {request.path})")
    text = json.dumps({"error": message})
    if status == 401:
        return web.HTTPUnauthorized(text=text, content_type="application/json",
                                    headers={"WWW-Authenticate": 'Bearer realm="doorlink bench"'})
    return web.HTTPForbidden(text=text, content_type="application/json")


def _own_origins(request: web.Request) -> set[str]:
    """The bench's own origins: loopback names on the port it listens on."""
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    port = sockname[1] if isinstance(sockname, tuple) and len(sockname) >= 2 else None
    if port is None:
        return set()
    return {f"{scheme}://{host}:{port}" for scheme in ("http", "https")
            for host in ("127.0.0.1", "localhost", "[::1]")}


def _check_door(request: web.Request) -> None:
    """Origin on the allow-list; a loopback Host where anonymous admins get
    in. Raises the HTTP error (counted) otherwise."""
    gate = request.app[GATE]
    origin = request.headers.get("Origin")
    if origin is not None:
        normal = origin.strip().rstrip("/").lower()
        if normal not in gate.allow_origins and normal not in _own_origins(request):
            raise _refused(request, 403, "origin", f"origin {origin[:100]!r} is not allowed "
                           "(doorlink bench --allow-origin ORIGIN)")
    if gate.loopback_host_only:
        try:
            host = request.url.host or ""
        except ValueError:
            host = ""
        if "Host" in request.headers and not is_loopback(host.strip("[]")):
            raise _refused(request, 403, "origin", "this bench answers only requests addressed to a loopback "
                           "name (127.0.0.1, localhost): it lets admins in without a token")


@web.middleware
async def _doors(request: web.Request,
                 handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    """Every request: the connection guard hears of it, the door policy is
    checked, and an unexpected failure is answered, logged in one line and
    counted instead of a traceback and a 500."""
    guard = request.app[GUARD]
    guard.begin(request.protocol)
    try:
        _check_door(request)
        return await handler(request)
    except web.HTTPException:
        raise
    except ConnectionResetError:
        # The peer went away while it was answered ("Cannot write to
        # closing transport"): its doing, not the bench's. Counted, and left
        # to aiohttp, which drops such a connection quietly.
        request.app[HUB].count_error("peer_gone")
        raise
    except Exception as e:  # noqa: BLE001 - the last net: nothing a peer sends may become a 500
        return _internal(request, e)
    finally:
        guard.end(request.protocol)


def _internal(request: web.Request, e: Exception) -> web.Response:
    hub = request.app[HUB]
    hub.count_error("internal")
    request.app[SAID].log(logging.ERROR, f"could not process {request.method} {request.path} from "
                          f"{_peer(request)}: {type(e).__name__}: {str(e)[:200]}")
    reason = f"the bench could not process this request ({type(e).__name__})"
    if request.path == cloudsolution.PATH:
        return web.json_response({"ret": "error", "result": False, "reason": reason}, status=400)
    return web.json_response({"error": reason}, status=400)



async def _admin_api(request: web.Request) -> str:
    """The API's data is an admin's: a token unless the policy lets
    anonymous admins in; a token given must be right. Returns the admin's
    name (ANONYMOUS for one let in without a token)."""
    hub = request.app[HUB]
    token = _bearer(request)
    if token is None:
        if hub.policy.require_auth:
            raise _refused(request, 401, "auth", "admin token required: Authorization: Bearer TOKEN")
        return ANONYMOUS
    admin = await hub.check_admin(token)
    if admin is None:
        raise _refused(request, 401, "auth", "admin authentication failed")
    return admin


async def _ws_handler(request: web.Request) -> web.WebSocketResponse:
    hub = request.app[HUB]
    guard = request.app[GUARD]
    limits = request.app[GATE].limits
    admin = None
    token = _bearer(request)
    if token is not None:
        admin = await hub.check_admin(token)
        if admin is None:
            raise _refused(request, 401, "auth", "admin authentication failed")
        guard.authenticated(request.protocol)
    ws = web.WebSocketResponse(max_msg_size=max(HARD_MAX_MESSAGE, hub.max_message * 2), timeout=CLOSE_TIMEOUT)
    await ws.prepare(request)

    async def close(code: int, reason: str) -> None:
        await ws.close(code=code, message=reason.encode())

    link = Link(_peer(request), ws.send_str, close)
    link.admin = admin
    guard.on_drop(request.protocol, lambda reason: link.close(TRY_AGAIN_LATER, reason))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limits.auth_deadline_s
    try:
        while True:
            waiting = link.role is None and link.admin is None
            try:
                frame = await ws.receive(timeout=max(deadline - loop.time(), 0) if waiting else None)
            except TimeoutError:
                reason = f"no register or subscribe within {limits.auth_deadline_s:g}s"
                hub.error(link, "auth_timeout", f"{link.peer}: {reason}")
                await link.close(json_ws.POLICY_VIOLATION, reason)
                break
            if frame.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
                break
            hub.counts["frames"] += 1
            if frame.type == WSMsgType.TEXT:
                await _receive(request, link, frame.data)
            elif frame.type == WSMsgType.BINARY:
                hub.error(link, "binary", "binary frames are not supported")
                await link.send('{"type": "error", "message": "binary frames are not supported"}')
            elif frame.type == WSMsgType.ERROR:
                # aiohttp has already closed the socket (e.g. over the hard size cap).
                hub.error(link, "protocol", f"websocket error: {ws.exception()}")
                break
            if link.role is not None:
                guard.authenticated(request.protocol)
            if link.closed:
                break
    finally:
        await hub.release(link)
    return ws


async def _receive(request: web.Request, link: Link, text: str) -> None:
    """One text frame: the first character tells the protocol, as the
    protocol document says; each protocol refuses a link registered in the
    other. A failure nobody foresaw closes the link with a reason (1011),
    logged in one line."""
    hub = request.app[HUB]
    protocol = xml_ws if text.lstrip().startswith("<") else json_ws
    try:
        for reply in await protocol.receive(hub, link, text):
            await link.send(reply)
        await hub.after_reply(link)
    except Exception as e:  # noqa: BLE001 - the last net: no peer's input may become a traceback
        hub.count_error("internal")
        request.app[SAID].log(logging.ERROR, f"could not process a message from {link.peer}: "
                              f"{type(e).__name__}: {str(e)[:200]}")
        await link.close(INTERNAL_ERROR, f"the bench could not process that message ({type(e).__name__})")


class _BodyRefused(Exception):
    """A request body over its limit (`late` False) or not in within the
    body deadline (`late` True)."""

    def __init__(self, message: str, late: bool = False) -> None:
        super().__init__(message)
        self.late = late


async def _read_body(request: web.Request, limit: int) -> bytes:
    """The whole request body, at most `limit` bytes, within the body
    deadline; _BodyRefused otherwise. A Content-Length over the limit is
    refused before reading; a chunked body, one byte past it."""
    if request.content_length is not None and request.content_length > limit:
        raise _BodyRefused(f"request body of {request.content_length} bytes is over the {limit} byte limit")
    deadline = request.app[GATE].limits.body_deadline_s
    body = bytearray()
    try:
        async with asyncio.timeout(deadline):
            while len(body) <= limit:
                more = await request.content.read(limit + 1 - len(body))
                if not more:
                    break
                body += more
    except TimeoutError:
        raise _BodyRefused(f"request body not received within {deadline:g}s", late=True) from None
    if len(body) > limit:
        raise _BodyRefused(f"request body is over the {limit} byte limit")
    return bytes(body)


async def _http_device(request: web.Request) -> web.Response:
    devices = request.app[HTTP_DEVICES]
    peer = _peer(request)
    try:
        bearer = _bearer(request)
    except web.HTTPUnauthorized:
        status, reply = devices.refuse("Authorization must be 'Bearer TOKEN'", peer)
        return web.json_response(reply, status=status)
    try:
        body = await _read_body(request, cloudsolution.MAX_BODY)
    except _BodyRefused as e:
        if e.late:
            status, reply = devices.refuse(str(e), peer, kind="http_timeout")
            return web.json_response(reply, status=408)
        status, reply = devices.refuse(str(e), peer)
        return web.json_response(reply, status=status)
    status, reply, authenticated = await devices.request(body, peer, bearer)
    if authenticated:
        request.app[GUARD].authenticated(request.protocol)
    return web.json_response(reply, status=status)


async def _control_ws(request: web.Request) -> web.WebSocketResponse:
    """A device's management channel: authenticated before the upgrade,
    then every text frame is a reply for control.py."""
    hub, ctl = request.app[HUB], request.app[CONTROL]
    device_id = request.headers.get("X-Device-Id", "").strip()
    token = _bearer(request)
    if not device_id or token is None:
        raise _refused(request, 401, "auth", f"a device connects to {control.PATH} with the headers "
                       "X-Device-Id: ID and Authorization: Bearer TOKEN (its device token)")
    if not await hub.check_device(device_id, token):
        raise _refused(request, 401, "auth", f"authentication failed for device {device_id[:100]!r}")
    request.app[GUARD].authenticated(request.protocol)
    ws = web.WebSocketResponse(max_msg_size=control.MAX_MESSAGE, heartbeat=request.app[GATE].limits.control_ping_s,
                               timeout=CLOSE_TIMEOUT, compress=False)
    await ws.prepare(request)

    async def close(code: int, reason: str) -> None:
        await ws.close(code=code, message=reason.encode())

    link = Link(_peer(request), ws.send_str, close)
    ctl.connected(link, device_id)
    reason = "disconnected"
    try:
        while not link.closed:
            frame = await ws.receive()
            if frame.type == WSMsgType.TEXT:
                ctl.receive(link, frame.data)
            elif frame.type == WSMsgType.BINARY:
                ctl.binary(link)
            elif frame.type == WSMsgType.ERROR:
                # aiohttp has closed it: a frame over the size cap, no pong in time.
                reason = f"was disconnected ({ws.exception() or 'websocket error'})"
                hub.error(link, "protocol", f"control channel of {device_id}: {reason}")
                break
            elif frame.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
                if ws.exception() is not None:
                    reason = f"was disconnected ({ws.exception()})"
                break
    finally:
        ctl.release(link, reason)
    return ws


# ControlError kind -> the HTTP status an admin gets
_CONTROL_STATUS = {"invalid": 400, "offline": 404, "too_large": 413, "gone": 502, "busy": 503, "timeout": 504}


def _control_error(kind: str, message: str) -> web.Response:
    return web.json_response({"error": message}, status=_CONTROL_STATUS[kind])


async def _api_control(request: web.Request) -> web.Response:
    """An admin's request to a device's management channel -> its reply."""
    await _admin_api(request)
    ctl, device_id = request.app[CONTROL], request.match_info["device_id"]
    if request.method == "GET":
        return web.json_response(request.app[HUB].store.control_status(device_id))
    if request.content_type != "application/json":
        # A form a web page can post without asking first is not one we take.
        return _control_error("invalid", "send the request as Content-Type: application/json")
    timeout = ctl.answer_s
    if "timeout" in request.query:
        try:
            timeout = float(request.query["timeout"])
        except ValueError:
            timeout = -1.0
        if not 0 < timeout <= control.MAX_ANSWER_S:
            return _control_error("invalid", f"timeout must be a number of seconds, more than 0 and at most "
                                             f"{control.MAX_ANSWER_S:g}")
    try:
        msg = strict_json.parse((await _read_body(request, control.MAX_MESSAGE)).decode("utf-8"))
    except _BodyRefused as e:
        return _control_error("too_large" if not e.late else "invalid", str(e))
    except (UnicodeDecodeError, ValueError) as e:
        return _control_error("invalid", f"the request is not JSON: {e}")
    if not isinstance(msg, dict) or set(msg) - {"type", "body"}:
        return _control_error("invalid", 'the request must be a JSON object {"type": T, "body": B} '
                                         "(body optional, nothing else: the bench adds the signature)")
    try:
        reply = await ctl.request(device_id, msg.get("type"), msg.get("body"), timeout)
    except control.ControlError as e:
        return _control_error(e.kind, str(e))
    return web.json_response(reply)


async def _api_devices(request: web.Request) -> web.Response:
    await _admin_api(request)
    hub = request.app[HUB]
    known = {d["device_id"] for d in hub.store.devices()}
    online = set(hub.online())
    rows = [{"device_id": d, "online": d in online} for d in sorted(known | online)]
    return web.json_response(rows)


async def _api_binding(request: web.Request) -> web.Response:
    """PUT binds a device to an app user, DELETE unbinds it; the user's app
    sessions hear of it at once (s2c_binding_changed, ENDUSER USER-BIND)."""
    await _admin_api(request)
    hub = request.app[HUB]
    uid, device_id = request.match_info["uid"], request.match_info["device_id"]
    try:
        if request.method == "PUT":
            changed = await hub.bind(uid, device_id)
        elif hub.store.user_token_hash(uid) is None:
            raise ValueError(f"no user {uid[:64]!r}: add it first (doorlink bench add-user)")
        else:
            changed = await hub.unbind(uid, device_id)
    except ValueError as e:
        return web.json_response({"error": str(e)}, status=404 if "no user" in str(e) else 400)
    return web.json_response({"uid": uid, "device_id": device_id, "bound": request.method == "PUT",
                              "changed": changed})


async def _api_stats(request: web.Request) -> web.Response:
    await _admin_api(request)
    return web.json_response(request.app[HUB].stats())


MAX_ROWS = 100000   # rows one GET /api/records?last=N may ask for
# kind -> the store's rows of that kind, for GET /api/records/{device_id}
_RECORD_ROWS = {records.PUNCH: BenchStore.punch_rows, records.EVENT: BenchStore.event_rows,
                records.TELEMETRY: BenchStore.telemetry_rows, records.ADMIN_LOG: BenchStore.admin_log_rows,
                "conflict": BenchStore.conflict_rows}


async def _api_records(request: web.Request) -> web.Response:
    await _admin_api(request)
    kind = request.query.get("kind", "")
    if kind not in _RECORD_ROWS:
        return web.json_response({"error": f"kind must be one of {', '.join(_RECORD_ROWS)}, got {kind!r}"},
                                 status=400)
    last = request.query.get("last")
    if last is not None and not (last.isdigit() and 1 <= int(last) <= MAX_ROWS):
        return web.json_response({"error": f"last must be a whole number from 1 to {MAX_ROWS}, got {last[:20]!r}"},
                                 status=400)
    rows = _RECORD_ROWS[kind](request.app[HUB].store, request.match_info["device_id"],
                              last=int(last) if last is not None else None)
    return web.json_response(rows)


async def _sweeper(app: web.Application) -> None:
    while True:
        await asyncio.sleep(SWEEP_EVERY_S)
        await app[HTTP_DEVICES].sweep()


async def _background(app: web.Application):  # noqa: ANN202 - an aiohttp cleanup context
    task = asyncio.create_task(_sweeper(app))
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _on_shutdown(app: web.Application) -> None:
    await app[CONTROL].shutdown()
    await app[HUB].shutdown()


async def _on_cleanup(app: web.Application) -> None:
    store = app[HUB].store
    store.reset_status()
    store.close()


def create_app(db_path: str, observer: Observer | None = None, max_message: int = 65536,
               policy: Policy | None = None, allow_origins: Sequence[str] = (),
               limits: Limits | None = None) -> web.Application:
    """Build the bench application. The store is opened now and closed on
    app cleanup (StoreError if it cannot be). `policy` says who gets in
    (default: admins without a token, for a bench on loopback)."""
    policy = policy or Policy()
    limits = limits or Limits()
    app = web.Application(middlewares=[_doors])
    store = BenchStore(db_path)
    # Anything still marked online is left over from a run that did not stop cleanly.
    store.reset_status()
    hub = Hub(store, observer=observer, max_message=max_message, policy=policy)
    app[GATE] = Gate(allow_origins=frozenset(o.strip().rstrip("/").lower() for o in allow_origins),
                     loopback_host_only=not policy.require_auth, limits=limits)
    app[GUARD] = ConnectionGuard(hub.count_error, limits.max_unauthenticated, limits.head_deadline_s)
    app[SAID] = RateLimited(10.0)
    hub.register_protocol(json_ws.PROTOCOL, json_ws.TITLE, json_ws.encode_command)
    hub.register_protocol(xml_ws.PROTOCOL, xml_ws.TITLE, xml_ws.encode_command)
    hub.register_protocol(cloudsolution.PROTOCOL, cloudsolution.TITLE, cloudsolution.encode_command)
    app[HUB] = hub
    app[HTTP_DEVICES] = cloudsolution.CloudSolution(hub)
    app[CONTROL] = control.Control(hub)
    devcenter.install(app, hub, app[GUARD].authenticated, limits.auth_deadline_s)   # /ws/dc/v1
    gizwits.install(app, hub, app[GUARD].authenticated, limits.auth_deadline_s)     # /ws/app/v1
    app.router.add_get("/ws", _ws_handler)
    app.router.add_post(cloudsolution.PATH, _http_device)
    app.router.add_get("/api/devices", _api_devices)
    app.router.add_get("/api/stats", _api_stats)
    app.router.add_put("/api/bindings/{uid}/{device_id}", _api_binding)
    app.router.add_delete("/api/bindings/{uid}/{device_id}", _api_binding)
    app.router.add_get("/api/records/{device_id}", _api_records)
    app.router.add_get(control.PATH, _control_ws)
    app.router.add_get("/api/control/{device_id}", _api_control)
    app.router.add_post("/api/control/{device_id}", _api_control)
    # The browser dashboard (GET /, /static/, POST /api/login): its login is this API's admin check.
    dashboard.add_routes(app, _admin_api)
    app.cleanup_ctx.append(_background)
    app.on_shutdown.append(_on_shutdown)
    app.on_cleanup.append(_on_cleanup)
    return app


@dataclass
class Bench:
    """A running bench: its address, its hub and store, and stop()."""

    app: web.Application
    runner: web.AppRunner
    host: str
    port: int
    tls: bool = False

    @property
    def url(self) -> str:
        return f"{'wss' if self.tls else 'ws'}://{self.host}:{self.port}/ws"

    @property
    def control_url(self) -> str:
        """Where a device opens its management channel (cloud control)."""
        return f"{'wss' if self.tls else 'ws'}://{self.host}:{self.port}{control.PATH}"

    @property
    def http_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    @property
    def hub(self) -> Hub:
        return self.app[HUB]

    @property
    def store(self) -> BenchStore:
        return self.hub.store

    @property
    def stats(self) -> dict:
        return {"errors": dict(self.hub.errors), "counts": dict(self.hub.counts)}

    async def stop(self) -> None:
        await self.runner.cleanup()


def policy_for(host: str, require_auth: bool = False, trust_sn_only: bool = False) -> Policy:
    """Protected mode: a bench that listens beyond loopback always wants
    admin tokens; on loopback only when asked to."""
    return Policy(require_auth=require_auth or not is_loopback(host), trust_sn_only=trust_sn_only)


async def start_bench(host: str = "127.0.0.1", port: int = 8780, db_path: str = "bench.sqlite3",
                      observer: Observer | None = None, max_message: int = 65536,
                      ssl_context: ssl.SSLContext | None = None, *, require_auth: bool = False,
                      trust_sn_only: bool = False, allow_origins: Sequence[str] = (),
                      limits: Limits | None = None) -> Bench:
    """Start a bench. Admins must give a token when `require_auth`, and
    always when `host` is not a loopback address (protected mode).
    StoreError for a database that cannot be used, OSError (or ValueError
    for a port out of range) when it cannot listen."""
    if not 0 <= port <= 65535:
        raise ValueError(f"port must be 0-65535, got {port}")
    policy = policy_for(host, require_auth, trust_sn_only)
    limits = limits or Limits()
    app = create_app(db_path, observer=observer, max_message=max_message, policy=policy,
                     allow_origins=allow_origins, limits=limits)
    accept_errors = AcceptErrors(app[HUB].count_error)

    async def uninstall(_app: web.Application) -> None:
        accept_errors.uninstall()

    app.on_cleanup.append(uninstall)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=CLOSE_TIMEOUT + 1,
                           keepalive_timeout=limits.keepalive_s, lingering_time=LINGER_S)
    try:
        await runner.setup()
        app[GUARD].attach(runner.server)
        site = web.TCPSite(runner, host, port, ssl_context=ssl_context)
        accept_errors.install(asyncio.get_running_loop())
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    real_port = port
    server = getattr(site, "_server", None)
    if server is not None and server.sockets:
        real_port = server.sockets[0].getsockname()[1]
    return Bench(app=app, runner=runner, host=host, port=real_port, tls=ssl_context is not None)


def tls_context(cert_file: str, key_file: str | None = None) -> ssl.SSLContext:
    """Server context for `wss://` and `https://` from a PEM certificate (chain) and key."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert_file, key_file)
    return ctx


async def serve(host: str, port: int, db_path: str, ssl_context: ssl.SSLContext | None = None,
                announce: bool = True, **options: object) -> None:
    """Serve until Ctrl-C or SIGTERM, then stop cleanly. `options` are
    start_bench's (require_auth, trust_sn_only, allow_origins, limits)."""
    stop = stop_event()
    bench = await start_bench(host, port, db_path, ssl_context=ssl_context, **options)
    try:
        if announce:
            print(f"bench listening on {bench.url} and {bench.http_url}{cloudsolution.PATH} (db: {db_path})",
                  flush=True)
            hub = bench.hub
            if hub.policy.require_auth:
                admins = len(hub.store.admins())
                hint = "" if admins else ": add one with doorlink bench add-admin"
                print(f"admins need a token ({admins} known{hint})", flush=True)
            else:
                print(f"admins without a token are let in ({ANONYMOUS}): --require-auth to refuse them", flush=True)
            if hub.policy.trust_sn_only:
                print("CloudSolution devices are trusted by serial number alone (--trust-sn-only)", flush=True)
        await stop.wait()
    finally:
        await bench.stop()

