# The agent's WebSocket connection (agent/transports/websocket.py) over
# stand-in streams, on both runtimes: what it sends back when the server
# pings, closes, breaks the protocol or stops reading. (Over real sockets:
# tests/mp/test_transports.py and the end-to-end tests.)
import asyncio

from agent.codecs import websocket as ws
from agent.errors import LinkClosed
from agent.transports.websocket import Connection

from support import araises


def _server_frame(opcode, payload):
    n = len(payload)
    if n < 126:
        return bytes((0x80 | opcode, n)) + payload
    return bytes((0x80 | opcode, 126)) + n.to_bytes(2, "big") + payload


def _frames(data):
    """(opcode, unmasked payload) of each client frame written."""
    out = []
    at = 0
    while at < len(data):
        n = data[at + 1] & 0x7F
        head = 2
        if n == 126:
            n, head = int.from_bytes(data[at + 2:at + 4], "big"), 4
        key = data[at + head:at + head + 4]
        body = data[at + head + 4:at + head + 4 + n]
        out.append((data[at] & 0x0F, bytes(body[i] ^ key[i % 4] for i in range(n))))
        at += head + 4 + n
    return out


class Reader:
    """Hands out what the server 'sent', in reads no larger than asked."""

    def __init__(self, data=b""):
        self.data = data
        self.asked = []

    async def read(self, n):
        self.asked.append(n)
        await asyncio.sleep(0)
        out, self.data = self.data[:n], self.data[n:]
        return out

    async def readinto(self, buf):     # MicroPython's Stream has it, CPython's not
        out = await self.read(len(buf))
        buf[:len(out)] = out
        return len(out)


class Writer:
    def __init__(self, stuck=False):
        self.out = bytearray()
        self.stuck = stuck
        self.closed = False

    def write(self, data):
        self.out += data

    async def drain(self):
        if self.stuck:
            await asyncio.sleep(3600)   # a peer that stopped reading

    def close(self):
        self.closed = True

    async def wait_closed(self):
        pass


def _conn(data, max_size=4096, stuck=False, write_timeout=10):
    reader, writer = Reader(data), Writer(stuck)
    return Connection(reader, writer, max_size, write_timeout), reader, writer


async def test_text_goes_out_masked_and_comes_in_whole():
    conn, _, writer = _conn(_server_frame(ws.TEXT, b'{"type": "registered"}'))
    await conn.send('{"type": "register", "name": "é"}')
    assert _frames(writer.out) == [(ws.TEXT, '{"type": "register", "name": "é"}'.encode())]
    assert await conn.recv() == '{"type": "registered"}'


async def test_a_ping_is_answered_with_its_payload():
    conn, _, writer = _conn(_server_frame(ws.PING, b"are you there") + _server_frame(ws.TEXT, b"next"))
    assert await conn.recv() == "next"
    assert _frames(writer.out) == [(ws.PONG, b"are you there")]


async def test_the_server_closing_is_answered_and_reported():
    conn, _, writer = _conn(_server_frame(ws.CLOSE, b"\x03\xe9shutting down"))
    e = await araises(LinkClosed, conn.recv())
    assert str(e) == "closed by the server (code 1001, shutting down)"
    assert _frames(writer.out) == [(ws.CLOSE, b"\x03\xe9")] and writer.closed
    assert "code 1001" in str(await araises(LinkClosed, conn.send("late")))


async def test_an_oversized_message_is_refused_with_1009_before_it_is_read():
    big = bytes((0x81, 127)) + (1 << 20).to_bytes(8, "big") + b"x" * 100
    conn, reader, writer = _conn(big)
    e = await araises(LinkClosed, conn.recv())
    assert "over the 4096 byte limit" in str(e) and "close 1009" in str(e)
    code, body = _frames(writer.out)[0]
    assert code == ws.CLOSE and body[:2] == b"\x03\xf1"
    assert max(reader.asked) <= 2048 and writer.closed


async def test_invalid_utf8_is_refused_with_1007():
    conn, _, writer = _conn(_server_frame(ws.TEXT, b"\xed\xa0\x80"))
    assert "close 1007" in str(await araises(LinkClosed, conn.recv()))
    assert _frames(writer.out)[0][1][:2] == b"\x03\xef"


async def test_a_connection_that_ends_without_a_close_frame():
    conn, _, writer = _conn(_server_frame(ws.TEXT, b"one"))
    assert await conn.recv() == "one"
    assert "closed without a close frame" in str(await araises(LinkClosed, conn.recv()))
    assert writer.closed


async def test_stuck_write_hits_its_deadline():
    conn, _, writer = _conn(b"", stuck=True, write_timeout=0.1)
    e = await asyncio.wait_for(araises(LinkClosed, conn.send("x")), 2)
    assert "write timed out after 0.1s" in str(e) and writer.closed
    assert "write timed out" in str(await araises(LinkClosed, conn.send("y")))


async def test_close_says_goodbye_once():
    conn, _, writer = _conn(b"")
    await conn.close()
    await conn.close()
    assert _frames(writer.out) == [(ws.CLOSE, b"\x03\xe8")] and writer.closed


class NoRoom:
    """A parser on a heap with no block large enough for the message."""

    def feed(self, data):
        raise MemoryError("memory allocation failed, allocating 3001 bytes")

    def pending(self):
        return False


async def test_a_message_that_does_not_fit_in_memory_is_refused_not_a_crash():
    conn, _, writer = _conn(_server_frame(ws.TEXT, b"x" * 3000))
    conn._parser = NoRoom()
    e = await araises(LinkClosed, conn.recv())
    assert "did not fit in free memory (close 1009)" in str(e)
    assert _frames(writer.out)[0][1][:2] == b"\x03\xf1" and writer.closed
