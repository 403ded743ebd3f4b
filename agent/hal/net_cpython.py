# WebSocket client for the CPython agent (Raspberry Pi, desktop): the
# `websockets` library behind the agent's Connection.
import asyncio

import websockets
from websockets.asyncio.client import connect as _connect

from agent.errors import LinkClosed
from agent.hal.tls import client_context
from agent.hal.ws_conn import Connection

_GONE = (websockets.ConnectionClosed, OSError)


def _why(e):
    frame = getattr(e, "rcvd", None) or getattr(e, "sent", None)
    if frame is not None:
        return "closed (code %d%s)" % (frame.code, ", " + frame.reason if frame.reason else "")
    return "connection lost (%s)" % (e,)


async def connect(url, max_size, timeout, write_timeout=10, ca_file=None):
    # Verified against ca_file, or the system's CAs when none is given.
    tls = client_context(ca_file) if url.startswith("wss://") else None
    try:
        ws = await asyncio.wait_for(
            _connect(url, max_size=max_size, open_timeout=None, ping_interval=None,
                     close_timeout=2, compression=None, ssl=tls),
            timeout)
    except asyncio.TimeoutError:
        raise LinkClosed("connect to %s timed out after %ss" % (url, timeout))
    except (OSError, websockets.WebSocketException) as e:
        raise LinkClosed("connect to %s failed: %s" % (url, e))
    return Connection(ws, _GONE, _why, write_timeout)
