# The agent's view of a WebSocket connection, whichever library is below:
# send/recv text, close, and one exception (LinkClosed) for "the link is gone".
import asyncio

from agent.errors import LinkClosed


class Connection:
    __slots__ = ("_ws", "_gone", "_why", "write_timeout")

    def __init__(self, ws, gone, why, write_timeout=10):
        self._ws = ws
        self._gone = gone    # the library's exception types meaning "closed"
        self._why = why      # exception -> readable reason
        self.write_timeout = write_timeout

    async def send(self, text):
        # A write deadline of its own: a peer that stops reading (full
        # buffers behind a blackhole) must not hold a send forever.
        try:
            await asyncio.wait_for(self._ws.send(text), self.write_timeout)
        except asyncio.TimeoutError:
            raise LinkClosed("write timed out after %ss" % self.write_timeout)
        except self._gone as e:
            raise LinkClosed(self._why(e))

    async def recv(self):
        try:
            return await self._ws.recv()
        except self._gone as e:
            raise LinkClosed(self._why(e))

    async def close(self):
        try:
            await asyncio.wait_for(self._ws.close(), 2)
        except Exception:  # noqa: BLE001 - closing a dead link is best effort
            pass
