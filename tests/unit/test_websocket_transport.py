import asyncio

from agent.errors import LinkClosed
from agent.transports.websocket import Connection

from support import araises


class Closed(Exception):
    pass


class StuckSocket:
    """Stands in for a WebSocket whose peer stopped reading: send() never
    completes. (The real case needs megabytes of kernel buffers to fill.)"""

    def __init__(self):
        self.sent = []

    async def send(self, text):
        self.sent.append(text)
        await asyncio.sleep(3600)

    async def recv(self):
        raise Closed("gone")

    async def close(self):
        pass


async def test_stuck_write_hits_its_deadline():
    conn = Connection(StuckSocket(), (Closed,), str, write_timeout=0.1)
    e = await asyncio.wait_for(araises(LinkClosed, conn.send("x")), 2)
    assert "write timed out after 0.1s" in str(e)


async def test_library_close_becomes_link_closed():
    conn = Connection(StuckSocket(), (Closed,), lambda e: "closed: %s" % e)
    e = await araises(LinkClosed, conn.recv())
    assert str(e) == "closed: gone"
