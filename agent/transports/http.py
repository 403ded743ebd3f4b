# JSON over HTTP/1.1 POST, for the CloudSolution uplink: one keep-alive
# connection reused across requests, reopened after any failure, one
# request at a time (the sender, the heartbeat and command results share
# it; HTTP/1.1 answers in order, so two requests in flight on one
# connection would read each other's replies). The bytes are
# agent.codecs.http11's; this file only moves them, each step under a
# deadline: connect (DNS, TCP, TLS) and each request/response. Every
# failure is a LinkClosed whose message says what went wrong. It lives
# beside the WebSocket connection (transports/websocket.py): both are I/O
# adapters, the same code on every runtime.
import asyncio
import json

from agent.codecs import http11
from agent.codecs.url import split_url
from agent.errors import LinkClosed
from agent.hal import drop_stream, read_into
from agent.transports.streams import describe, open_stream

_READ = 2048


class HttpClient:
    def __init__(self, url_base, timeout, ca_file=None, max_body=65536):
        scheme, self.host, self.port, self.base = split_url(url_base, ("http", "https"))
        self.tls = scheme == "https"
        self.timeout = timeout
        self.ca_file = ca_file
        self.max_body = max_body
        self.connections = 0  # opened so far (keep-alive reuse is visible in stats)
        self._reader = None
        self._writer = None
        self._one = asyncio.Lock()
        # One receive buffer for the client's life, as the WebSocket has:
        # a fresh 2 KB block per read failed on a heap that a large journal
        # backlog had left in smaller holes (MicroPython, 6,000+ records).
        self._rx = memoryview(bytearray(_READ))

    def _where(self):
        return "%s://%s:%d" % ("https" if self.tls else "http", self.host, self.port)

    async def post_json(self, path, obj):
        """POST obj as JSON -> (status, parsed reply or None if empty, raw body).
        A 5xx status, a reply that is not JSON, and every network failure
        raise LinkClosed; 2xx-4xx replies are returned for the caller to judge."""
        data = http11.request("POST", self.host, self.port, self.base + path,
                              json.dumps(obj).encode(), default_port=443 if self.tls else 80)
        async with self._one:
            try:
                resp = await self._exchange(data)
            except _Stale:
                # The server dropped the idle keep-alive connection before our
                # request reached it: once more on a fresh one.
                resp = await self._exchange(data)
            if not resp.keep_alive:
                await self._close()
        if resp.status >= 500:
            raise LinkClosed("HTTP %d from server" % resp.status)
        if not resp.body:
            return resp.status, None, resp.body
        try:
            parsed = json.loads(resp.body)
        except ValueError:
            raise LinkClosed("reply is not JSON: HTTP %d %r" % (resp.status, resp.body[:60]))
        except (RuntimeError, MemoryError):
            # Nested deeper than the parser can follow (RecursionError is a
            # RuntimeError on CPython; MicroPython runs out of heap).
            raise LinkClosed("reply of %d bytes cannot be parsed: nested too deep or too large for memory"
                             % len(resp.body))
        return resp.status, parsed, resp.body

    async def close(self):
        """Hang up, after the request in flight (if any) is answered: a
        command's result may be on its way out while the link ends."""
        async with self._one:
            await self._close()

    async def _close(self):
        writer = self._drop()
        if writer is not None:
            try:
                await asyncio.wait_for(writer.wait_closed(), 2)
            except Exception:  # noqa: BLE001, S110 - closing a broken link may fail in any way
                pass

    def _drop(self):
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            drop_stream(writer)
        return writer

    # -- internals ------------------------------------------------------------
    async def _connect(self):
        try:
            self._reader, self._writer = await asyncio.wait_for(
                open_stream(self.host, self.port, self.tls, self.ca_file, self._where()), self.timeout)
        except asyncio.TimeoutError:
            raise LinkClosed("connect to %s timed out after %ss" % (self._where(), self.timeout))
        self.connections += 1

    async def _exchange(self, data):
        reused = self._writer is not None
        if not reused:
            await self._connect()
        got = [0]
        try:
            return await asyncio.wait_for(self._send_and_read(data, got), self.timeout)
        except asyncio.TimeoutError:
            await self._close()
            raise LinkClosed("no reply from %s within %ss" % (self._where(), self.timeout))
        except http11.HttpError as e:
            await self._close()
            raise LinkClosed("bad HTTP reply from %s: %s" % (self._where(), e))
        except (OSError, ValueError, EOFError) as e:
            await self._close()
            if reused and not got[0]:
                raise _Stale()
            if not got[0] and not isinstance(e, EOFError):
                # MicroPython connects and shakes hands lazily: a refused
                # port or certificate (mbedtls: ValueError) shows up here.
                raise LinkClosed("connect to %s failed: %s" % (self._where(), describe(e)))
            raise LinkClosed("connection to %s lost: %s" % (self._where(), describe(e)))
        except BaseException:
            self._drop()  # cancelled mid-request: the link is out of step
            raise

    async def _send_and_read(self, data, got):
        self._writer.write(data)
        await self._writer.drain()
        parser = http11.ResponseParser(max_body=self.max_body)
        while True:
            n = await read_into(self._reader, self._rx)
            chunk = bytes(self._rx[:n])   # what came, not the whole buffer
            if not chunk:
                if not got[0]:
                    raise EOFError("closed by the server before replying")
                return parser.eof()
            got[0] += len(chunk)
            resp = parser.feed(chunk)
            if resp is not None:
                if parser.rest:
                    await self._close()  # more bytes than one response: out of step
                return resp


class _Stale(Exception):
    pass
