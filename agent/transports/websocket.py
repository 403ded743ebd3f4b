# The agent's WebSocket connection, whichever client library the runtime has
# (agent/hal/net_cpython.py, net_mpy.py open it): text send/recv, close, and
# one exception, LinkClosed, for "the link is gone". It lives beside the
# HTTP client (transports/http.py): both are I/O adapters over what the hal
# provides, the same code on every runtime; only the opening differs.
import asyncio

from agent import hal
from agent.errors import LinkClosed


async def connect(url, max_size, timeout, write_timeout=10, ca_file=None):
    """Open a WebSocket to `url` within `timeout` (DNS, TCP, TLS and the
    handshake together) -> Connection; LinkClosed saying why otherwise."""
    net = hal.network()
    try:
        ws = await asyncio.wait_for(net.open(url, max_size, timeout, ca_file), timeout)
    except asyncio.TimeoutError:
        raise LinkClosed("connect to %s timed out after %ss" % (url, timeout))
    except LinkClosed:
        raise
    except net.CONNECT_ERRORS as e:
        raise LinkClosed("connect to %s failed: %s" % (url, str(e).strip() or e.__class__.__name__))
    return Connection(ws, net.GONE, net.why, write_timeout)


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
        except Exception:  # noqa: BLE001, S110 - closing a dead link is best effort
            pass
