# WebSocket client for the CPython agent (Raspberry Pi, desktop): the
# `websockets` library. Presents the same three calls as net_mpy.
import asyncio

import websockets
from websockets.asyncio.client import connect as _connect

from agent.errors import LinkClosed


class Connection:
    __slots__ = ("_ws",)

    def __init__(self, ws):
        self._ws = ws

    async def send(self, text):
        try:
            await self._ws.send(text)
        except websockets.ConnectionClosed as e:
            raise LinkClosed(_why(e))

    async def recv(self):
        try:
            return await self._ws.recv()
        except websockets.ConnectionClosed as e:
            raise LinkClosed(_why(e))

    async def close(self):
        try:
            await asyncio.wait_for(self._ws.close(), 2)
        except Exception:  # noqa: BLE001 - closing a dead link is best effort
            pass


def _why(e):
    rcvd = getattr(e, "rcvd", None)
    sent = getattr(e, "sent", None)
    frame = rcvd or sent
    if frame is not None:
        return "closed (code %d%s)" % (frame.code, ", " + frame.reason if frame.reason else "")
    return "connection lost"


async def connect(url, max_size, timeout):
    try:
        ws = await asyncio.wait_for(
            _connect(url, max_size=max_size, open_timeout=None, ping_interval=None,
                     close_timeout=2, compression=None),
            timeout)
    except asyncio.TimeoutError:
        raise LinkClosed("connect to %s timed out after %ss" % (url, timeout))
    except (OSError, websockets.WebSocketException) as e:
        raise LinkClosed("connect to %s failed: %s" % (url, e))
    return Connection(ws)
