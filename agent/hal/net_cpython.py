# Opens a WebSocket for the CPython agent (Raspberry Pi, desktop) with the
# `websockets` library; agent/transports/websocket.py wraps what it returns.
import websockets
from websockets.asyncio.client import connect as _connect

from agent.hal.tls import client_context

GONE = (websockets.ConnectionClosed, OSError)              # the link is gone
CONNECT_ERRORS = (OSError, websockets.WebSocketException)   # it never came up


def why(e):
    frame = getattr(e, "rcvd", None) or getattr(e, "sent", None)
    if frame is not None:
        return "closed (code %d%s)" % (frame.code, ", " + frame.reason if frame.reason else "")
    return "connection lost (%s)" % (e,)


async def open(url, max_size, timeout, ca_file=None):  # shadows the builtin on purpose: the module's verb
    # Verified against ca_file, or the system's CAs when none is given.
    tls = client_context(ca_file) if url.startswith("wss://") else None
    return await _connect(url, max_size=max_size, open_timeout=None, ping_interval=None,
                          close_timeout=2, compression=None, ssl=tls)
