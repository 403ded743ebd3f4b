# The agent's WebSocket connection: the bytes are agent.codecs.websocket's
# (handshake, frames, limits); this file only moves them over an asyncio
# stream (agent.transports.streams opens it, TLS included), the same code
# on both runtimes. Text send/recv, close, and one exception, LinkClosed,
# for "the link is gone", always with the reason. It lives beside the HTTP
# client (transports/http.py).
#
# recv() is called by one task at a time (the uplink's reader); send() by
# several (sender, heartbeat, command results, pongs), so writes take a
# lock: MicroPython lets only one task wait to write on a stream, and a
# frame must go out whole.
import asyncio
import os

from agent.codecs import websocket as ws
from agent.codecs.url import split_url
from agent.errors import LinkClosed
from agent.hal import drop_stream, read_into, ticks_ms
from agent.transports.streams import describe, open_stream

CLOSE_WAIT_S = 2
RECV_CHUNK = 1024


async def connect(url, max_size, timeout, write_timeout=10, ca_file=None, headers=(), as_bytes=False):
    """Open a WebSocket to `url` within `timeout` (DNS, TCP, TLS and the
    handshake together) -> Connection; LinkClosed saying why otherwise.
    Messages over `max_size` bytes are refused at their frame header.
    `headers`: more (name, value) pairs for the handshake request.
    `as_bytes`: recv() gives a message's UTF-8 bytes, not decoded."""
    scheme, host, port, path = split_url(url, ("ws", "wss"))
    tls = scheme == "wss"
    where = "%s://%s:%d" % (scheme, host, port)
    key = ws.new_key(os.urandom(16))
    writer = None
    try:
        async def opening():
            nonlocal writer
            reader, writer = await open_stream(host, port, tls, ca_file, where)
            writer.write(ws.handshake(host, port, path, key, 443 if tls else 80, headers))
            await writer.drain()
            got = b""
            while True:
                chunk = await reader.read(512)
                if not chunk:
                    raise LinkClosed("connect to %s failed: closed during the WebSocket handshake" % where)
                got += chunk
                rest = ws.check_response(got, key)
                if rest is not None:
                    return Connection(reader, writer, max_size, write_timeout, rest, as_bytes)
        return await asyncio.wait_for(opening(), timeout)
    except asyncio.TimeoutError:
        _drop(writer)
        raise LinkClosed("connect to %s timed out after %ss" % (where, timeout))
    except ws.HandshakeError as e:
        _drop(writer)
        raise LinkClosed("connect to %s failed: %s" % (where, e))
    except (OSError, ValueError) as e:
        # MicroPython connects and shakes hands (TLS) lazily: a refused
        # port or certificate (mbedtls: ValueError) shows up here.
        _drop(writer)
        raise LinkClosed("connect to %s failed: %s" % (where, describe(e)))
    except BaseException:
        _drop(writer)   # LinkClosed from open_stream, or cancelled: no socket left behind
        raise


def _drop(writer):
    if writer is not None:
        drop_stream(writer)


class Connection:
    __slots__ = ("_reader", "_writer", "_parser", "_events", "_lock", "write_timeout", "_gone", "_rest", "_rx",
                 "rx_ms")

    def __init__(self, reader, writer, max_size, write_timeout=10, rest=b"", as_bytes=False):
        self._reader = reader
        self._writer = writer
        self._parser = ws.FrameParser(max_size, as_bytes=as_bytes)
        self._events = []
        self._lock = asyncio.Lock()
        self.write_timeout = write_timeout
        self._gone = None        # why the link ended, once it has
        self._rest = rest        # bytes that came with the handshake response
        # One receive buffer for the connection's life: no allocation per read.
        self._rx = memoryview(bytearray(RECV_CHUNK))
        # When bytes last came (ticks_ms): any frame, a ping too, proves the
        # link to a caller that watches for silence (the control channel).
        self.rx_ms = ticks_ms()

    async def send(self, text):
        await self._send(ws.TEXT, text.encode())

    async def recv(self):
        """The next text message; pings are answered on the way."""
        while True:
            if self._gone is not None:
                raise LinkClosed(self._gone)
            while self._events:
                kind, value = self._events.pop(0)
                if kind == ws.MESSAGE:
                    return value
                if kind == ws.PING_EV:
                    await self._send(ws.PONG, value)
                elif kind == ws.CLOSE_EV:
                    # Answer with the same code, as the RFC asks, then hang up.
                    code, reason = value
                    await self._end(code if code != ws.NO_STATUS else ws.NORMAL, "",
                                    "closed by the server (code %d%s)" % (code, ", " + reason if reason else ""))
                # a pong: nothing to do (we never ping at the WebSocket level)
            data, self._rest = self._rest, b""
            if not data and self._parser.pending():
                pass            # frames already received come first
            elif not data:
                try:
                    n = await read_into(self._reader, self._rx)
                except (OSError, ValueError) as e:
                    self._lost("connection lost (%s)" % describe(e))
                    continue
                if not n:
                    self._lost("connection lost (closed without a close frame)")
                    continue
                self.rx_ms = ticks_ms()
                data = self._rx[:n]
            try:
                self._events = self._parser.feed(data)
            except ws.WsError as e:
                await self._end(e.code, e.reason, "refused by the device: %s (close %d)" % (e.reason, e.code))
            except MemoryError:
                # Within max_frame, but no free block is large enough (a
                # fragmented heap): refused like a message over the limit,
                # and the next connection starts on a collected heap.
                self._events = []
                await self._end(ws.TOO_BIG, "message does not fit in free memory",
                                "refused by the device: a message did not fit in free memory (close 1009)")

    async def close(self):
        if self._gone is None:
            await self._end(ws.NORMAL, "", "closed")

    # -- internals ----------------------------------------------------------
    async def _send(self, opcode, payload):
        if self._gone is not None:
            raise LinkClosed(self._gone)
        data = ws.frame(opcode, payload, os.urandom(4))
        try:
            await asyncio.wait_for(self._write(data), self.write_timeout)
        except asyncio.TimeoutError:
            self._lost("write timed out after %ss" % self.write_timeout)
            raise LinkClosed(self._gone)
        except (OSError, ValueError) as e:
            self._lost("connection lost (%s)" % describe(e))
            raise LinkClosed(self._gone)

    async def _write(self, data):
        async with self._lock:
            try:
                self._writer.write(data)
                await self._writer.drain()
            except BaseException:
                # Part of a frame may be out: the stream is out of step and
                # can carry nothing more (the caller says why, if it knows).
                _drop(self._writer)
                raise

    async def _end(self, code, reason, why):
        """Send a close frame (best effort, briefly), hang up, remember why."""
        if self._gone is None:
            self._gone = why
            try:
                data = ws.frame(ws.CLOSE, ws.close_payload(code, reason), os.urandom(4))
                await asyncio.wait_for(self._write(data), CLOSE_WAIT_S)
                # Then read (and drop) what the server still sends until it
                # hangs up, briefly: a socket closed with unread data is
                # reset, and the server would never see our close code.
                await asyncio.wait_for(self._discard_until_eof(), CLOSE_WAIT_S)
            except Exception:  # noqa: BLE001, S110 - the peer may be gone already
                pass
        _drop(self._writer)

    async def _discard_until_eof(self):
        while await read_into(self._reader, self._rx):
            pass

    def _lost(self, why):
        if self._gone is None:
            self._gone = why
        _drop(self._writer)
