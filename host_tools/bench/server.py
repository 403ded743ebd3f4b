"""Bench cloud: the server side of seed 001's JSON WebSocket protocol.

Devices and admin dashboards share `GET /ws`; the first valid message decides
the role (`register` = device, `subscribe` = admin). Devices push telemetry
and events, which are stored in SQLite and fanned out to every admin; admins
send commands, which are routed to the named device if it is connected.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable

from aiohttp import WSCloseCode, WSMsgType, web

from host_tools.signals import stop_event

from . import http_proto
from .store import BenchStore

Observer = Callable[[str, dict], Any]

# aiohttp's own limit sits well above the app limit so an oversized message
# gets a readable error instead of a bare 1009 close.
HARD_MAX_MESSAGE = 1 << 20
# A close handshake with a client that never answers must not stall a
# replacement registration or shutdown for aiohttp's default 10 s.
CLOSE_TIMEOUT = 2.0

STORE = web.AppKey("bench_store", BenchStore)
STATE = web.AppKey("bench_state", object)


# --- validation (pure) -------------------------------------------------

_ROLE_FIRST = "register or subscribe first"

# type -> roles allowed to send it (None = no role yet)
_ALLOWED: dict[str, set] = {
    "ping": {None, "device", "admin"},
    "pong": {None, "device", "admin"},
    "register": {None},
    "subscribe": {None, "admin"},
    "telemetry": {"device"},
    "event": {"device"},
    "command": {"admin"},
}

_ROLE_ERRORS = {
    ("register", "device"): "already registered on this connection; open a new connection to register again",
    ("register", "admin"): "register is not allowed on an admin connection",
    ("subscribe", "device"): "subscribe is not allowed on a device connection",
    ("telemetry", "admin"): "telemetry is only accepted from a registered device, not an admin",
    ("event", "admin"): "event is only accepted from a registered device, not an admin",
    ("command", "device"): "command is only accepted from an admin, not a device",
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
    """Return why `msg` is unacceptable on a connection with `role`, or None.

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
        if msg["role"] != "admin":
            return f"unsupported role {msg['role']!r}; only 'admin' can subscribe"
        return None
    if mtype in ("telemetry", "event"):
        if "device_id" in msg and not isinstance(msg["device_id"], str):
            return "field 'device_id' must be a string"
        if "time" in msg and (isinstance(msg["time"], bool) or not isinstance(msg["time"], (int, float))):
            return "field 'time' must be a number (seconds since the epoch)"
        if mtype == "telemetry":
            return _need_object(msg, "payload", required=True)
        return _need_str(msg, "event_type") or _need_object(msg, "payload", required=False)
    if mtype == "command":
        err = (
            _need_str(msg, "device_id")
            or _need_str(msg, "command")
            or _need_object(msg, "payload", required=False)
        )
        if err:
            return err
        if "id" in msg:
            cid = msg["id"]
            if isinstance(cid, bool) or not isinstance(cid, (str, int)) or cid == "":
                return "field 'id' must be a non-empty string or an integer"
        return None
    return None


def _reject_constant(name: str) -> Any:
    # NaN/Infinity are not JSON; accepting them would make us re-emit invalid JSON.
    raise ValueError(f"non-standard JSON constant {name}")


def parse_text(text: str) -> Any:
    """json.loads that refuses NaN/Infinity. Raises ValueError."""
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise ValueError("nesting too deep") from None


# --- server state --------------------------------------------------------


@dataclass(eq=False)
class _Conn:
    ws: web.WebSocketResponse
    peer: str
    role: str | None = None
    device_id: str | None = None


@dataclass
class _State:
    observer: Observer | None
    max_message: int
    devices: dict[str, _Conn] = field(default_factory=dict)
    admins: set[_Conn] = field(default_factory=set)
    errors: Counter = field(default_factory=Counter)
    counts: Counter = field(default_factory=Counter)
    next_command: int = 0
    duplicates: int = 0  # resent records already stored (acked again, not stored twice)
    tasks: set[asyncio.Task] = field(default_factory=set)

    def notify(self, kind: str, data: dict) -> None:
        if self.observer is None:
            return
        try:
            self.observer(kind, data)
        except Exception:
            pass  # a broken live log must never take the bench down


async def _send_text(conn: _Conn, text: str) -> bool:
    if conn.ws.closed:
        return False
    try:
        await conn.ws.send_str(text)
        return True
    except Exception:
        return False


async def _send(conn: _Conn, obj: dict) -> bool:
    return await _send_text(conn, json.dumps(obj))


async def _broadcast(state: _State, obj: dict) -> None:
    admins = list(state.admins)
    if not admins:
        return
    results = await asyncio.gather(*(_send(a, obj) for a in admins))
    for admin, ok in zip(admins, results):
        if not ok:
            state.admins.discard(admin)


def _report_error(state: _State, conn: _Conn, kind: str, message: str) -> None:
    """Count and log an error; the caller answers in the peer's protocol."""
    state.errors[kind] += 1
    state.notify("error", {"peer": conn.peer, "message": message, "kind": kind, "device_id": conn.device_id})


async def _error(state: _State, conn: _Conn, kind: str, message: str) -> None:
    _report_error(state, conn, kind, message)
    await _send(conn, {"type": "error", "message": message})


# --- message handlers -----------------------------------------------------


async def _on_register(app: web.Application, state: _State, conn: _Conn, msg: dict) -> None:
    device_id = msg["device_id"]
    if not app[STORE].check_token(device_id, msg["token"]):
        await _error(state, conn, "auth", f"authentication failed for device {device_id}")
        await conn.ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"authentication failed")
        return
    replaced = _claim_device(app, state, conn, device_id)
    # `acks` is our extension: a device that numbers its records gets an
    # `ack` for each and may forget it then. Seed-only devices ignore it.
    await _send(conn, {"type": "registered", "device_id": device_id, "acks": True})
    await _announce_online(state, conn, replaced)


def _claim_device(app: web.Application, state: _State, conn: _Conn, device_id: str) -> bool:
    """Make `conn` the authenticated connection of `device_id` (any
    protocol). Returns True when it replaced an older connection."""
    conn.role, conn.device_id = "device", device_id
    old = state.devices.get(device_id)
    # Swap first: the old socket's cleanup sees it is no longer current and
    # so does not report the device offline.
    state.devices[device_id] = conn
    if old is not None:
        task = asyncio.create_task(
            old.ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"replaced by a new connection")
        )
        state.tasks.add(task)
        task.add_done_callback(state.tasks.discard)
    app[STORE].set_status(device_id, True)
    return old is not None


async def _announce_online(state: _State, conn: _Conn, replaced: bool) -> None:
    """Tell admins and the observer; after the device got its reply."""
    await _broadcast(state, {"type": "device_status", "device_id": conn.device_id, "status": "online"})
    state.notify("device_online", {"device_id": conn.device_id, "peer": conn.peer, "replaced": replaced})


async def _on_subscribe(state: _State, conn: _Conn) -> None:
    first = conn.role is None
    conn.role = "admin"
    state.admins.add(conn)
    for device_id in list(state.devices):
        await _send(conn, {"type": "device_status", "device_id": device_id, "status": "online"})
    if first:
        state.notify("admin_online", {"peer": conn.peer})


async def _on_device_data(app: web.Application, state: _State, conn: _Conn, msg: dict) -> None:
    claimed = msg.get("device_id", conn.device_id)
    if claimed != conn.device_id:
        await _error(
            state,
            conn,
            "mismatch",
            f"device_id mismatch: connection is registered as {conn.device_id}, message says {claimed}",
        )
        return
    store = app[STORE]
    # Only a positive integer id is a journal record id; any other `id` is
    # some peer's own extra field and, like all extras, ignored.
    record_id = msg.get("id")
    if isinstance(record_id, bool) or not isinstance(record_id, int) or record_id < 1:
        record_id = None
    device_time = msg.get("time")
    if msg["type"] == "telemetry":
        payload = msg["payload"]
        received_at = store.add_telemetry(conn.device_id, payload, record_id=record_id, device_time=device_time)
        out = {"type": "telemetry", "device_id": conn.device_id, "payload": payload, "received_at": received_at}
    else:
        payload = msg.get("payload", {})
        received_at = store.add_event(
            conn.device_id, msg["event_type"], payload, record_id=record_id, device_time=device_time
        )
        out = {
            "type": "event",
            "device_id": conn.device_id,
            "event_type": msg["event_type"],
            "payload": payload,
            "received_at": received_at,
        }
    if record_id is not None:
        # Acknowledge after the row is committed, duplicates too: the device
        # resends until it hears this.
        await _send(conn, {"type": "ack", "id": record_id})
        out["id"] = record_id
    if received_at is None:
        state.duplicates += 1
        return
    if device_time is not None:
        out["time"] = device_time
    await _broadcast(state, out)
    state.notify(msg["type"], out)


async def _on_command(app: web.Application, state: _State, conn: _Conn, msg: dict) -> None:
    device_id = msg["device_id"]
    target = state.devices.get(device_id)
    if target is None or target.ws.closed:
        await _error(state, conn, "offline", f"device {device_id} is not online")
        return
    if "id" in msg:
        command_id = msg["id"]
    else:
        state.next_command += 1
        command_id = f"cmd-{state.next_command}"
    payload = msg.get("payload", {})
    out = {"type": "command", "device_id": device_id, "command": msg["command"], "payload": payload, "id": command_id}
    from .xml_proto import command_request, is_xml_device  # here: xml_proto imports this module

    if is_xml_device(target):
        request = command_request(msg["command"], payload, command_id)
        if request is None:
            await _error(state, conn, "invalid", f"command {msg['command']!r} has no XML form for terminal {device_id}")
            return
        sent = await _send_text(target, request)
    else:
        sent = await _send(target, out)
    if not sent:
        await _error(state, conn, "offline", f"device {device_id} is not online")
        return
    app[STORE].add_command(str(command_id), device_id, msg["command"], payload)
    state.notify("command", {**out, "peer": conn.peer})


async def _on_text(app: web.Application, state: _State, conn: _Conn, text: str) -> None:
    if text.lstrip().startswith("<"):  # seed 001 XML biometric terminals share /ws
        from .xml_proto import handle_xml  # here: xml_proto imports this module

        return await handle_xml(app, state, conn, text)
    size = len(text.encode("utf-8"))
    if size > state.max_message:
        await _error(state, conn, "too_large", f"message too large: {size} bytes (limit {state.max_message})")
        return
    try:
        msg = parse_text(text)
    except ValueError as exc:
        await _error(state, conn, "malformed_json", f"malformed JSON: {exc}")
        return
    problem = validate_message(msg, conn.role)
    if problem:
        await _error(state, conn, "invalid", problem)
        return
    mtype = msg["type"]
    state.counts[mtype] += 1
    if mtype == "ping":
        await _send(conn, {"type": "pong"})
    elif mtype == "pong":
        pass  # answer to a ping; arriving at all is the point
    elif mtype == "register":
        await _on_register(app, state, conn, msg)
    elif mtype == "subscribe":
        await _on_subscribe(state, conn)
    elif mtype in ("telemetry", "event"):
        await _on_device_data(app, state, conn, msg)
    elif mtype == "command":
        await _on_command(app, state, conn, msg)


async def _on_close(app: web.Application, state: _State, conn: _Conn) -> None:
    if conn.role == "admin":
        state.admins.discard(conn)
        state.notify("admin_offline", {"peer": conn.peer})
    elif conn.role == "device" and state.devices.get(conn.device_id) is conn:
        del state.devices[conn.device_id]
        try:
            app[STORE].set_status(conn.device_id, False)
        except Exception:
            pass  # store already closed during shutdown
        await _broadcast(state, {"type": "device_status", "device_id": conn.device_id, "status": "offline"})
        state.notify("device_offline", {"device_id": conn.device_id, "peer": conn.peer})


def _peer(request: web.Request) -> str:
    peername = request.transport.get_extra_info("peername") if request.transport else None
    if isinstance(peername, tuple) and len(peername) >= 2:
        return f"{peername[0]}:{peername[1]}"
    return str(request.remote or "?")


async def _ws_handler(request: web.Request) -> web.WebSocketResponse:
    app = request.app
    state: _State = app[STATE]
    ws = web.WebSocketResponse(max_msg_size=max(HARD_MAX_MESSAGE, state.max_message * 2), timeout=CLOSE_TIMEOUT)
    await ws.prepare(request)
    conn = _Conn(ws, _peer(request))
    try:
        async for frame in ws:
            state.counts["frames"] += 1
            if frame.type == WSMsgType.TEXT:
                await _on_text(app, state, conn, frame.data)
            elif frame.type == WSMsgType.BINARY:
                await _error(state, conn, "binary", "binary frames are not supported")
            elif frame.type == WSMsgType.ERROR:
                # aiohttp has already closed the socket (e.g. over the hard size cap).
                state.errors["protocol"] += 1
                state.notify("error", {"peer": conn.peer, "message": f"websocket error: {ws.exception()}",
                                       "kind": "protocol", "device_id": conn.device_id})
                break
    finally:
        await _on_close(app, state, conn)
    return ws


# --- HTTP API ----------------------------------------------------------------


async def _api_devices(request: web.Request) -> web.Response:
    state: _State = request.app[STATE]
    known = {d["device_id"] for d in request.app[STORE].devices()}
    rows = [{"device_id": d, "online": d in state.devices} for d in sorted(known | set(state.devices))]
    return web.json_response(rows)


async def _api_stats(request: web.Request) -> web.Response:
    state: _State = request.app[STATE]
    return web.json_response(
        {
            "messages": sum(v for k, v in state.counts.items() if k != "frames"),
            "frames": state.counts["frames"],
            "by_type": {k: v for k, v in state.counts.items() if k != "frames"},
            "errors": dict(state.errors),
            "errors_total": sum(state.errors.values()),
            "duplicates": state.duplicates,
            "devices_online": len(state.devices),
            "admins": len(state.admins),
        }
    )


async def _on_shutdown(app: web.Application) -> None:
    state: _State = app[STATE]
    conns = list(state.devices.values()) + list(state.admins)
    await asyncio.gather(
        *(c.ws.close(code=WSCloseCode.GOING_AWAY, message=b"bench shutting down") for c in conns),
        return_exceptions=True,
    )
    for task in list(state.tasks):
        task.cancel()


async def _on_cleanup(app: web.Application) -> None:
    store = app[STORE]
    store.reset_status()
    store.close()


def create_app(db_path: str, observer: Observer | None = None, max_message: int = 65536) -> web.Application:
    """Build the bench application. The store is opened now and closed on app cleanup."""
    app = web.Application()
    store = BenchStore(db_path)
    # Anything still marked online is left over from a run that did not stop cleanly.
    store.reset_status()
    app[STORE] = store
    app[STATE] = _State(observer=observer, max_message=max_message)
    app.router.add_get("/ws", _ws_handler)
    app.router.add_get("/api/devices", _api_devices)
    app.router.add_get("/api/stats", _api_stats)
    http_proto.add_routes(app)
    app.on_shutdown.append(_on_shutdown)
    app.on_cleanup.append(_on_cleanup)
    return app


# --- running -------------------------------------------------------------------


@dataclass
class Bench:
    app: web.Application
    runner: web.AppRunner
    host: str
    port: int
    tls: bool = False

    @property
    def url(self) -> str:
        return f"{'wss' if self.tls else 'ws'}://{self.host}:{self.port}/ws"

    @property
    def http_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    @property
    def store(self) -> BenchStore:
        return self.app[STORE]

    @property
    def stats(self) -> dict:
        state: _State = self.app[STATE]
        return {"errors": dict(state.errors), "counts": dict(state.counts)}

    async def stop(self) -> None:
        await self.runner.cleanup()


async def start_bench(
    host: str = "127.0.0.1",
    port: int = 8780,
    db_path: str = "bench.sqlite3",
    observer: Observer | None = None,
    max_message: int = 65536,
    ssl_context: ssl.SSLContext | None = None,
) -> Bench:
    app = create_app(db_path, observer=observer, max_message=max_message)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=CLOSE_TIMEOUT + 1)
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=ssl_context)
    try:
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
    """Server context for `wss://` from a PEM certificate (chain) and key."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert_file, key_file)
    return ctx


def run_bench(
    host: str = "127.0.0.1",
    port: int = 8780,
    db_path: str = "bench.sqlite3",
    ssl_context: ssl.SSLContext | None = None,
) -> int:
    """Serve until Ctrl-C or SIGTERM, then stop cleanly. Returns 0."""

    async def main() -> None:
        stop = stop_event()
        bench = await start_bench(host, port, db_path, ssl_context=ssl_context)
        try:
            print(f"bench listening on {bench.url} (db: {db_path})", flush=True)
            await stop.wait()
        finally:
            await bench.stop()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
    return 0
