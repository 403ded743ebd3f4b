# Opens a WebSocket for the MicroPython agent (ESP32, unix port) with the
# `micropython-websockets` package, loaded precompiled (.mpy) from the
# board's lib folder; agent/transports/websocket.py wraps what it returns.
import asyncio

import micropython_websockets as mws
from micropython_websockets import websockets as mws_core  # the handshake, for wss://

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


async def _open_wss(url, max_size, ca_file):
    # micropython-websockets 0.1.0 wants `ussl` and passes a dict as ssl=,
    # which current MicroPython refuses. So the TLS stream is opened here
    # with a real SSLContext (certificate and host name verified), and the
    # library's own handshake and connection run on top of it.
    scheme, host, port, path = mws_core._parse_uri(url)
    reader, writer = await asyncio.open_connection(host, port, ssl=client_context(ca_file),
                                                   server_hostname=host)
    try:
        hdrs, proto = await mws_core._client_handshake(reader, writer, host, path, {}, [])
    except BaseException:
        writer.close()
        raise
    ws = mws.ClientConnection(reader, writer, max_size=max_size)
    ws.uri = url
    ws.response_headers = hdrs
    ws.subprotocol = proto
    ws._start_recv_task()
    return ws


async def open(url, max_size, timeout, ca_file=None):  # shadows the builtin on purpose: the module's verb
    if url.startswith("wss://"):
        return await _open_wss(url, max_size, ca_file)
    return await mws.connect(url, max_size=max_size, open_timeout=timeout).__aenter__()
