# WebSocket client for the MicroPython agent (ESP32, unix port): the
# `micropython-websockets` package, loaded precompiled (.mpy) from the
# board's lib folder, behind the agent's Connection.
import asyncio

import micropython_websockets as mws
from micropython_websockets import websockets as mws_core  # the handshake, for wss://

from agent.errors import LinkClosed
from agent.hal.tls import client_context
from agent.hal.ws_conn import Connection

_GONE = (mws.ConnectionClosed, OSError)


def _why(e):
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


async def connect(url, max_size, timeout, write_timeout=10, ca_file=None):
    if url.startswith("wss://"):
        opening = _open_wss(url, max_size, ca_file)
    else:
        opening = mws.connect(url, max_size=max_size, open_timeout=timeout).__aenter__()
    try:
        ws = await asyncio.wait_for(opening, timeout)
    except asyncio.TimeoutError:
        raise LinkClosed("connect to %s timed out after %ss" % (url, timeout))
    except (OSError, ValueError, mws.WebSocketException) as e:
        # mbedtls reports a refused certificate as ValueError.
        raise LinkClosed("connect to %s failed: %s" % (url, str(e).strip()))
    return Connection(ws, _GONE, _why, write_timeout)
