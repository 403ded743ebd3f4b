# WebSocket client for the MicroPython agent (ESP32, unix port): the
# `micropython-websockets` package, loaded precompiled (.mpy) from the
# board's lib folder. Presents the same three calls as net_cpython.
import asyncio

import micropython_websockets as mws

from agent.errors import LinkClosed


class Connection:
    __slots__ = ("_ws",)

    def __init__(self, ws):
        self._ws = ws

    async def send(self, text):
        try:
            await self._ws.send(text)
        except (mws.ConnectionClosed, OSError) as e:
            raise LinkClosed(_why(e))

    async def recv(self):
        try:
            return await self._ws.recv()
        except mws.ConnectionClosed as e:
            raise LinkClosed(_why(e))

    async def close(self):
        try:
            await asyncio.wait_for(self._ws.close(), 2)
        except Exception:  # noqa: BLE001 - closing a dead link is best effort
            pass


def _why(e):
    code = getattr(e, "code", None)
    if code:
        reason = getattr(e, "reason", "")
        return "closed (code %d%s)" % (code, ", " + reason if reason else "")
    return "connection lost (%s)" % (e,)


async def connect(url, max_size, timeout):
    try:
        ws = await asyncio.wait_for(
            mws.connect(url, max_size=max_size, open_timeout=timeout).__aenter__(), timeout)
    except asyncio.TimeoutError:
        raise LinkClosed("connect to %s timed out after %ss" % (url, timeout))
    except (OSError, mws.WebSocketException) as e:
        raise LinkClosed("connect to %s failed: %s" % (url, e))
    return Connection(ws)
