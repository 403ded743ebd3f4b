"""What keeps the bench serving when peers do not behave: a cap on the
connections that have not authenticated yet, a deadline for the first
request on a connection, and accept errors reported once per interval.

Idle or half-sent connections cost a file descriptor each; about a
thousand of them once left no descriptor for a real device, and asyncio
then logged every failed accept with a traceback (hundreds of megabytes a
minute). So:

- ConnectionGuard watches every TCP connection aiohttp accepts (through the
  low-level server's connection_made/connection_lost). A connection counts
  as unauthenticated until a device or admin on it has proved who it is.
  Past `max_unauthenticated`, the OLDEST unauthenticated connection is
  closed at once, with a reason where the protocol can carry one (an HTTP
  503, a WebSocket close 1013): a burst of idle connections then makes room
  for the device that arrives after it, instead of locking it out until
  they time out. A connection that has sent no complete request head within
  `head_deadline_s` is closed with an HTTP 408.
- AcceptErrors takes asyncio's "socket.accept() out of system resource"
  reports off the loop's exception handler: each is counted, one log line
  per `every_s` says how many there were.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

log = logging.getLogger("doorlink.bench")

MAX_UNAUTHENTICATED = 64
HEAD_DEADLINE_S = 10.0       # from accept to the first complete request head
AUTH_DEADLINE_S = 10.0       # from a WebSocket upgrade to register/subscribe
BODY_DEADLINE_S = 10.0       # for a request body, once its head is in
KEEPALIVE_S = 30.0           # an idle keep-alive connection (and the next head on it)
CONTROL_PING_S = 5.0         # a silent management channel is pinged this often (the cloud-control default)
ACCEPT_LOG_EVERY_S = 10.0


@dataclass(frozen=True)
class Limits:
    """The bench's bounds (tests shorten them)."""

    max_unauthenticated: int = MAX_UNAUTHENTICATED
    head_deadline_s: float = HEAD_DEADLINE_S
    auth_deadline_s: float = AUTH_DEADLINE_S
    body_deadline_s: float = BODY_DEADLINE_S
    keepalive_s: float = KEEPALIVE_S
    control_ping_s: float = CONTROL_PING_S

_OUT_OF_RESOURCES = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)


def _http(status: str, text: str) -> bytes:
    """A whole HTTP response, for a connection aiohttp has not answered."""
    body = (text + "\r\n").encode()
    return (f"HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nConnection: close\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


class _Conn:
    __slots__ = ("busy", "closer", "requests", "timer", "transport")

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self.busy = 0          # requests being handled now
        self.requests = 0      # requests begun on it so far
        self.closer: Callable[[str], Awaitable[Any]] | None = None   # a WebSocket's close, with a reason
        self.timer: asyncio.TimerHandle | None = None


class ConnectionGuard:
    """The cap on unauthenticated connections and the first-head deadline
    (see the module's docstring). `count(kind)` counts what it did."""

    def __init__(self, count: Callable[[str], None], max_unauthenticated: int = MAX_UNAUTHENTICATED,
                 head_deadline_s: float = HEAD_DEADLINE_S) -> None:
        if max_unauthenticated < 1:
            raise ValueError("max_unauthenticated must be at least 1")
        self._count = count
        self.max_unauthenticated = max_unauthenticated
        self.head_deadline_s = head_deadline_s
        self._conns: dict[object, _Conn] = {}
        self._unauthenticated: dict[object, None] = {}   # oldest first
        self._tasks: set[asyncio.Task] = set()
        self._said = RateLimited(ACCEPT_LOG_EVERY_S)

    def attach(self, server: web.Server) -> None:
        """Watch the connections of aiohttp's low-level server (its
        connection_made/connection_lost hooks, called by every handler)."""
        made, lost = server.connection_made, server.connection_lost

        def connection_made(handler: Any, transport: asyncio.Transport) -> None:
            made(handler, transport)
            self._made(handler, transport)

        def connection_lost(handler: Any, exc: BaseException | None = None) -> None:
            lost(handler, exc)
            self._lost(handler)

        server.connection_made = connection_made   # type: ignore[method-assign]
        server.connection_lost = connection_lost   # type: ignore[method-assign]

    @property
    def unauthenticated(self) -> int:
        return len(self._unauthenticated)

    def _made(self, handler: object, transport: asyncio.Transport) -> None:
        conn = self._conns[handler] = _Conn(transport)
        self._unauthenticated[handler] = None
        conn.timer = asyncio.get_running_loop().call_later(self.head_deadline_s, self._head_late, handler)
        while len(self._unauthenticated) > self.max_unauthenticated:
            oldest = next(iter(self._unauthenticated))
            reason = "too many unauthenticated connections"
            self._drop(oldest, "too_many_unauthenticated", reason, _http("503 Service Unavailable", reason))

    def _lost(self, handler: object) -> None:
        conn = self._conns.pop(handler, None)
        self._unauthenticated.pop(handler, None)
        if conn is not None and conn.timer is not None:
            conn.timer.cancel()

    def _head_late(self, handler: object) -> None:
        conn = self._conns.get(handler)
        if conn is not None and conn.requests == 0:
            reason = f"no complete request head within {self.head_deadline_s:g}s"
            self._drop(handler, "head_timeout", reason, _http("408 Request Timeout", reason))

    def _drop(self, handler: object, kind: str, reason: str, http_answer: bytes) -> None:
        """Close a connection with a reason its peer can read, and count it."""
        self._unauthenticated.pop(handler, None)
        conn = self._conns.get(handler)
        self._count(kind)
        self._said.log(logging.WARNING, f"closed a connection: {reason}")
        if conn is None:
            return
        if conn.closer is not None:
            task = asyncio.ensure_future(conn.closer(reason))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        elif conn.busy == 0:
            # No request being answered: nothing else will write to it.
            conn.transport.write(http_answer)
            conn.transport.close()
        else:
            conn.transport.close()

    # -- what the app tells it --------------------------------------------------------
    def begin(self, handler: object) -> None:
        """A request head is in: the head deadline is met."""
        conn = self._conns.get(handler)
        if conn is not None:
            conn.busy += 1
            conn.requests += 1
            if conn.timer is not None:
                conn.timer.cancel()
                conn.timer = None

    def end(self, handler: object) -> None:
        conn = self._conns.get(handler)
        if conn is not None:
            conn.busy -= 1

    def on_drop(self, handler: object, closer: Callable[[str], Awaitable[Any]]) -> None:
        """How to close this connection with a reason (a WebSocket's close)."""
        conn = self._conns.get(handler)
        if conn is not None:
            conn.closer = closer

    def authenticated(self, handler: object) -> None:
        """A device or admin on it proved who it is: no longer capped."""
        self._unauthenticated.pop(handler, None)


class RateLimited:
    """One log line per interval for a message that may come in floods;
    the next line says how many were held back."""

    def __init__(self, every_s: float) -> None:
        self.every_s = every_s
        self._next = 0.0
        self._held = 0

    def log(self, level: int, message: str) -> None:
        now = time.monotonic()
        if now < self._next:
            self._held += 1
            return
        more = f" (and {self._held} more like it in the last {self.every_s:g}s)" if self._held else ""
        log.log(level, "%s%s", message, more)
        self._held = 0
        self._next = now + self.every_s


class AcceptErrors:
    """asyncio reports each failed accept (out of file descriptors, ...)
    through the loop's exception handler, with a traceback, as often as it
    retries. Installed on the bench's loop, this counts them and logs one
    line per interval; anything else goes to the handler it replaced."""

    def __init__(self, count: Callable[[str], None], every_s: float = ACCEPT_LOG_EVERY_S) -> None:
        self._count = count
        self._said = RateLimited(every_s)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._previous: Callable[[asyncio.AbstractEventLoop, dict], object] | None = None

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._previous = loop.get_exception_handler()
        loop.set_exception_handler(self.handle)

    def uninstall(self) -> None:
        loop, self._loop = self._loop, None
        # Only if nobody installed another handler since (a second bench).
        if loop is not None and loop.get_exception_handler() == self.handle:
            loop.set_exception_handler(self._previous)

    def handle(self, loop: asyncio.AbstractEventLoop, context: dict) -> None:
        exc = context.get("exception")
        if (isinstance(exc, OSError) and exc.errno in _OUT_OF_RESOURCES
                and "accept" in str(context.get("message", ""))):
            self._count("accept_failed")
            self._said.log(logging.ERROR, f"cannot accept connections: {exc.strerror or exc}")
            return
        if self._previous is not None:
            self._previous(loop, context)
        else:
            loop.default_exception_handler(context)
