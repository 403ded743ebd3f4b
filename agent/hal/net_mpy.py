# Opens a WebSocket for the MicroPython agent (ESP32, unix port) with the
# `micropython-websockets` package, loaded precompiled (.mpy) from the
# board's lib folder; agent/transports/websocket.py wraps what it returns.
import asyncio

import micropython_websockets as mws
from micropython_websockets import websockets as mws_core  # the handshake, for wss://

from agent.hal import drop_stream
from agent.hal.tls import client_context

GONE = (mws.ConnectionClosed, OSError)
# mbedtls reports a refused certificate as ValueError.
CONNECT_ERRORS = (OSError, ValueError, mws.WebSocketException)


def why(e):
    code = getattr(e, "code", None)
    if code:
        reason = getattr(e, "reason", "")
        return "closed (code %d%s)" % (code, ", " + reason if reason else "")
    return "connection lost (%s)" % (e,)


async def open(url, max_size, timeout, ca_file=None):  # shadows the builtin on purpose: the module's verb
    # The library's own connect() cannot be used: for wss:// it wants `ussl`
    # and passes a dict as ssl=, which current MicroPython refuses; and a
    # handshake that fails leaks the socket (it calls writer.close() alone,
    # which on MicroPython closes nothing, and a cancel skips even that): a
    # board has ~10 sockets, and a blackholed server would take them all.
    # So the stream is opened here (a real SSLContext for wss://,
    # certificate and host name verified), the library's handshake and
    # connection run on top of it, and any end but success closes it. The
    # steps keep the library's own order and deadline (a wait_for task):
    # on a 192 KB heap, where objects land decides whether a 6 KB message
    # still finds a contiguous block later (README, Memory).
    scheme, host, port, path = mws_core._parse_uri(url)
    if scheme == "wss":
        reader, writer = await asyncio.open_connection(host, port, ssl=client_context(ca_file),
                                                       server_hostname=host)
    else:
        reader, writer = await asyncio.open_connection(host, port)
    ws = mws.ClientConnection(reader, writer, max_size=max_size)
    ws.uri = url
    try:
        hdrs, proto = await asyncio.wait_for(mws_core._client_handshake(reader, writer, host, path, {}, []),
                                             timeout)
    except BaseException:
        drop_stream(writer)
        raise
    ws.response_headers = hdrs
    ws.subprotocol = proto
    ws._start_recv_task()
    return ws
