# WebSocket client for the MicroPython agent (ESP32, unix port): the
# `micropython-websockets` package, loaded precompiled (.mpy) from the
# board's lib folder, behind the agent's Connection.
import asyncio

import micropython_websockets as mws

from agent.errors import LinkClosed
from agent.hal.ws_conn import Connection

_GONE = (mws.ConnectionClosed, OSError)


def _why(e):
    code = getattr(e, "code", None)
    if code:
        reason = getattr(e, "reason", "")
        return "closed (code %d%s)" % (code, ", " + reason if reason else "")
    return "connection lost (%s)" % (e,)


async def connect(url, max_size, timeout, write_timeout=10):
    try:
        ws = await asyncio.wait_for(
            mws.connect(url, max_size=max_size, open_timeout=timeout).__aenter__(), timeout)
    except asyncio.TimeoutError:
        raise LinkClosed("connect to %s timed out after %ss" % (url, timeout))
    except (OSError, mws.WebSocketException) as e:
        raise LinkClosed("connect to %s failed: %s" % (url, e))
    return Connection(ws, _GONE, _why, write_timeout)
