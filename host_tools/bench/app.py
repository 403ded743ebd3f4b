"""The bench cloud as an aiohttp application: routes, start and stop.

`GET /ws` carries the JSON WebSocket protocol (devices and admins) and the
XML biometric protocol; the first character of each text frame tells them
apart (`<` is XML, as the protocol document has it). `POST /api/device-http`
is CloudSolution 3.0. `GET /api/devices` and `GET /api/stats` report;
`GET /api/records/{device_id}?kind=punch|event|telemetry|admin_log` returns
what the bench stored from a device (tests read it from inside MicroPython). Each
protocol module returns its replies; this module sends them, then lets the
hub announce what changed (hub.after_reply).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from dataclasses import dataclass

from aiohttp import WSMsgType, web

from agent import records
from host_tools.signals import stop_event

from . import cloudsolution, json_ws, xml_ws
from .hub import Hub, Link, Observer
from .store import BenchStore

# aiohttp's own limit sits well above the app limit so an oversized message
# gets a readable error instead of a bare 1009 close.
HARD_MAX_MESSAGE = 1 << 20
# A close handshake with a client that never answers must not stall a
# replacement registration or shutdown for aiohttp's default 10 s.
CLOSE_TIMEOUT = 2.0
SWEEP_EVERY_S = 10.0

HUB = web.AppKey("bench_hub", Hub)
HTTP_DEVICES = web.AppKey("bench_cloudsolution", cloudsolution.CloudSolution)


def _peer(request: web.Request) -> str:
    peername = request.transport.get_extra_info("peername") if request.transport else None
    if isinstance(peername, tuple) and len(peername) >= 2:
        return f"{peername[0]}:{peername[1]}"
    return str(request.remote or "?")


async def _ws_handler(request: web.Request) -> web.WebSocketResponse:
    hub = request.app[HUB]
    ws = web.WebSocketResponse(max_msg_size=max(HARD_MAX_MESSAGE, hub.max_message * 2), timeout=CLOSE_TIMEOUT)
    await ws.prepare(request)

    async def close(code: int, reason: str) -> None:
        await ws.close(code=code, message=reason.encode())

    link = Link(_peer(request), ws.send_str, close)
    try:
        async for frame in ws:
            hub.counts["frames"] += 1
            if frame.type == WSMsgType.TEXT:
                # The first character tells, as the protocol document says;
                # each protocol refuses a link registered in the other.
                protocol = xml_ws if frame.data.lstrip().startswith("<") else json_ws
                for reply in await protocol.receive(hub, link, frame.data):
                    await link.send(reply)
                await hub.after_reply(link)
            elif frame.type == WSMsgType.BINARY:
                hub.error(link, "binary", "binary frames are not supported")
                await link.send('{"type": "error", "message": "binary frames are not supported"}')
            elif frame.type == WSMsgType.ERROR:
                # aiohttp has already closed the socket (e.g. over the hard size cap).
                hub.error(link, "protocol", f"websocket error: {ws.exception()}")
                break
    finally:
        await hub.release(link)
    return ws


async def _http_device(request: web.Request) -> web.Response:
    devices = request.app[HTTP_DEVICES]
    limit = cloudsolution.MAX_BODY
    if request.content_length is not None and request.content_length > limit:
        status, reply = devices.refuse(f"request body of {request.content_length} bytes is over the {limit} "
                                       "byte limit", _peer(request))
        return web.json_response(reply, status=status)
    # Chunked uploads announce no length: read at most one byte past the limit.
    body = await request.content.read(limit + 1)
    while len(body) <= limit:
        more = await request.content.read(limit + 1 - len(body))
        if not more:
            break
        body += more
    if len(body) > limit:
        status, reply = devices.refuse(f"request body is over the {limit} byte limit", _peer(request))
    else:
        status, reply = await devices.request(body, _peer(request))
    return web.json_response(reply, status=status)


async def _api_devices(request: web.Request) -> web.Response:
    hub = request.app[HUB]
    known = {d["device_id"] for d in hub.store.devices()}
    online = set(hub.online())
    rows = [{"device_id": d, "online": d in online} for d in sorted(known | online)]
    return web.json_response(rows)


async def _api_stats(request: web.Request) -> web.Response:
    return web.json_response(request.app[HUB].stats())


# kind -> the store's rows of that kind, for GET /api/records/{device_id}
_RECORD_ROWS = {records.PUNCH: BenchStore.punch_rows, records.EVENT: BenchStore.event_rows,
                records.TELEMETRY: BenchStore.telemetry_rows, records.ADMIN_LOG: BenchStore.admin_log_rows}


async def _api_records(request: web.Request) -> web.Response:
    kind = request.query.get("kind", "")
    if kind not in _RECORD_ROWS:
        return web.json_response({"error": f"kind must be one of {', '.join(_RECORD_ROWS)}, got {kind!r}"},
                                 status=400)
    return web.json_response(_RECORD_ROWS[kind](request.app[HUB].store, request.match_info["device_id"]))


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
    await app[HUB].shutdown()


async def _on_cleanup(app: web.Application) -> None:
    store = app[HUB].store
    store.reset_status()
    store.close()


def create_app(db_path: str, observer: Observer | None = None, max_message: int = 65536) -> web.Application:
    """Build the bench application. The store is opened now and closed on app cleanup."""
    app = web.Application()
    store = BenchStore(db_path)
    # Anything still marked online is left over from a run that did not stop cleanly.
    store.reset_status()
    hub = Hub(store, observer=observer, max_message=max_message)
    hub.register_protocol(json_ws.PROTOCOL, json_ws.TITLE, json_ws.encode_command)
    hub.register_protocol(xml_ws.PROTOCOL, xml_ws.TITLE, xml_ws.encode_command)
    hub.register_protocol(cloudsolution.PROTOCOL, cloudsolution.TITLE, cloudsolution.encode_command)
    app[HUB] = hub
    app[HTTP_DEVICES] = cloudsolution.CloudSolution(hub)
    app.router.add_get("/ws", _ws_handler)
    app.router.add_post(cloudsolution.PATH, _http_device)
    app.router.add_get("/api/devices", _api_devices)
    app.router.add_get("/api/stats", _api_stats)
    app.router.add_get("/api/records/{device_id}", _api_records)
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


async def start_bench(host: str = "127.0.0.1", port: int = 8780, db_path: str = "bench.sqlite3",
                      observer: Observer | None = None, max_message: int = 65536,
                      ssl_context: ssl.SSLContext | None = None) -> Bench:
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
    """Server context for `wss://` and `https://` from a PEM certificate (chain) and key."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert_file, key_file)
    return ctx


async def serve(host: str, port: int, db_path: str, ssl_context: ssl.SSLContext | None = None,
                announce: bool = True) -> None:
    """Serve until Ctrl-C or SIGTERM, then stop cleanly."""
    stop = stop_event()
    bench = await start_bench(host, port, db_path, ssl_context=ssl_context)
    try:
        if announce:
            print(f"bench listening on {bench.url} and {bench.http_url}{cloudsolution.PATH} (db: {db_path})",
                  flush=True)
        await stop.wait()
    finally:
        await bench.stop()

