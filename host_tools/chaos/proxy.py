# The TCP fault proxy: proves the agent loses nothing when the network
# misbehaves. It sits between the agent and the bench cloud:
#
#     agent  ->  127.0.0.1:<proxy port>  ->  FaultProxy  ->  target (bench)
#
# Faults, applied to every live connection at once:
#   drop()            close every connection cleanly (FIN to both peers)
#   reset()           abort every connection with a TCP RST (SO_LINGER 0)
# Modes, which also apply to new connections until heal():
#   blackhole()       forward nothing, close nothing: both peers see a silent,
#                     half-open link (no data, no FIN, no RST)
#   refuse()          new connections are reset at once (a server that is
#                     down); existing connections are untouched
#   delay(s)          every chunk is forwarded s seconds after it arrived
#                     (latency, not bandwidth: order is kept per direction)
#   throttle(bps)     at most bps bytes/s per direction
#   heal()            clear every mode
# (faults.py holds the table of these kinds: their argument rules and wording.)
#
# Design choices, stated once:
# * Blackhole stops *reading* the sockets rather than reading and discarding.
#   A real blackhole drops packets and TCP retransmits them once the route is
#   back, so the application loses nothing; at the stream level the faithful
#   emulation is "stop reading": the kernel buffers fill, the senders' windows
#   close, and after heal() every held byte is delivered in order. Bytes the
#   proxy had already read when the blackhole began are held, not dropped.
# * A connection that arrives during a blackhole is accepted (the listening
#   kernel completes the handshake before we could say no anyway) and held
#   silently; the proxy does not even dial the target until heal(), so the
#   cloud sees nothing, as it would behind a dead route. Once healed it dials
#   and forwards whatever the client sent meanwhile, as if the SYN retransmit
#   finally got through.
# * refuse() answers a new connection with an RST: the nearest stream-level
#   equivalent of ECONNREFUSED. A target that cannot be reached is reported to
#   the client the same way.
# * A peer's RST is passed on as an RST; a peer's FIN as a FIN (half-close is
#   kept, so request/response-then-shutdown protocols work through the proxy).
#
# It is a test tool: it listens on loopback unless told otherwise, and every
# wait inside it is bounded (dialing, closing, stop()).

from __future__ import annotations

import asyncio
import collections
import socket
import struct
from collections.abc import Coroutine
from typing import Any

from host_tools.chaos.faults import KINDS

CONNECT_TIMEOUT = 5.0     # dialing the target
CLOSE_GRACE = 2.0         # a clean close that has not finished by then is aborted
STOP_GRACE = 0.5          # stop(): clean close first, then abort
HIGH_WATER = 256 * 1024   # bytes held per direction before the proxy stops reading
THROTTLE_SLICE_S = 0.05   # throttle sends slices of bps * this many bytes


def _rst(transport: asyncio.BaseTransport | None) -> None:
    """Close with a TCP RST: SO_LINGER (on, 0 s), then close."""
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    transport.abort()


class _Side(asyncio.Protocol):
    """One socket of a proxied pair: the client's, or the one to the target."""

    def __init__(self, pair: _Pair, name: str) -> None:
        self.pair = pair
        self.name = name
        self.transport: asyncio.Transport | None = None
        self.reading = True
        self.writable = asyncio.Event()
        self.writable.set()
        self.lost: asyncio.Future[Exception | None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self.pair._made(self)

    def data_received(self, data: bytes) -> None:
        self.pair._data(self, data)

    def eof_received(self) -> bool:
        self.pair._eof(self)
        return True  # keep our write half open: half-close is forwarded

    def connection_lost(self, exc: Exception | None) -> None:
        self.writable.set()
        if not self.lost.done():
            self.lost.set_result(exc)
        self.pair._lost(self, exc)

    def pause_writing(self) -> None:
        self.writable.clear()

    def resume_writing(self) -> None:
        self.writable.set()

    def set_reading(self, want: bool) -> None:
        t = self.transport
        if t is None or t.is_closing() or want == self.reading:
            return
        self.reading = want
        if want:
            t.resume_reading()
        else:
            t.pause_reading()


class _Direction:
    """Bytes read from src, not yet written to dst."""

    def __init__(self, src: _Side, dst: _Side, counter: str) -> None:
        self.src = src
        self.dst = dst
        self.counter = counter          # stats key for bytes forwarded
        self.pending: collections.deque[tuple[float, bytes]] = collections.deque()  # (arrival time, bytes)
        self.nbytes = 0
        self.eof = False
        self.wake = asyncio.Event()
        self.next_t = 0.0               # throttle: earliest time of the next slice


class _Pair:
    """A client connection and its connection to the target, pumped both ways."""

    def __init__(self, proxy: FaultProxy) -> None:
        self.proxy = proxy
        self.client = _Side(self, "client")
        self.upstream = _Side(self, "upstream")
        self.c2u = _Direction(self.client, self.upstream, "bytes_to_target")
        self.u2c = _Direction(self.upstream, self.client, "bytes_to_client")
        self.connected = False  # the upstream connect has completed
        self.closing = False
        self.rst = False
        self.tasks: set[asyncio.Task[None]] = set()
        self.finished = 0
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    # -- protocol callbacks --------------------------------------------------
    def _made(self, side: _Side) -> None:
        p = self.proxy
        if side is self.client:
            p.stats["accepted"] += 1
            if p._stopping or p._refuse:
                if not p._stopping:
                    p.stats["refused"] += 1
                self.closing = self.rst = True
                _rst(side.transport)
                return
            p._pairs.add(self)
            p.stats["live"] = len(p._pairs)
            self.done.add_done_callback(lambda _: p._forget(self))
            self._spawn(self._connect())
        elif self.closing:
            if self.rst:
                _rst(side.transport)
            else:
                side.transport.close()
            return
        self.update_reading()

    def _data(self, side: _Side, data: bytes) -> None:
        if self.closing:
            return  # a lingering clean close: input is read and discarded
        d = self.c2u if side is self.client else self.u2c
        d.pending.append((asyncio.get_running_loop().time(), data))
        d.nbytes += len(data)
        d.wake.set()
        self.update_reading()

    def _eof(self, side: _Side) -> None:
        if self.closing:
            side.transport.close()  # the peer has answered our FIN: done with it
            return
        d = self.c2u if side is self.client else self.u2c
        d.eof = True
        d.wake.set()

    def _lost(self, side: _Side, exc: Exception | None) -> None:
        if side is self.upstream and not self.connected and not self.closing:
            return  # a connect that failed or timed out: _connect() reports it
        if not self.closing:
            # The peer reset us: pass the reset on. Otherwise (we closed it,
            # e.g. the other side's pump finished) close the rest cleanly.
            self.close(rst=exc is not None)
        self._check_done()

    # -- control -------------------------------------------------------------
    def update_reading(self) -> None:
        if self.closing:  # lingering close: keep reading (and discarding) until the peer closes
            self.client.set_reading(True)
            self.upstream.set_reading(True)
            return
        want = not self.proxy._blackhole
        self.client.set_reading(want and self.c2u.nbytes < HIGH_WATER)
        self.upstream.set_reading(want and self.u2c.nbytes < HIGH_WATER)

    def close(self, rst: bool = False, grace: float = CLOSE_GRACE) -> None:
        if self.closing and (self.rst or not rst):
            return
        self.closing = True
        self.rst = self.rst or rst
        current = asyncio.current_task()
        for t in list(self.tasks):
            if t is not current:
                t.cancel()
        for d in (self.c2u, self.u2c):
            d.pending.clear()
            d.nbytes = 0
        for side, d in ((self.client, self.c2u), (self.upstream, self.u2c)):
            t = side.transport
            if t is None:
                if not side.lost.done():
                    side.lost.set_result(None)  # never connected
            elif rst:
                _rst(t)
            elif d.eof or not t.can_write_eof():
                t.close()
            else:
                # A clean close that is a FIN even if the peer is still sending:
                # closing a socket with unread input makes Linux send an RST, so
                # send FIN (after anything already written), then read and
                # discard until the peer closes too, or the grace period ends.
                try:
                    t.write_eof()
                except OSError:
                    # The peer is gone already (ENOTCONN: its RST came in
                    # before the transport heard of it): nothing to finish.
                    t.abort()
                    continue
                side.set_reading(True)
        if not rst:
            asyncio.get_running_loop().call_later(grace, self._force)
        self._check_done()

    def _force(self) -> None:
        for side in (self.client, self.upstream):
            if side.transport is not None and not side.lost.done():
                side.transport.abort()

    def _check_done(self) -> None:
        if (self.closing and self.client.lost.done() and self.upstream.lost.done()
                and not self.done.done()):
            self.done.set_result(None)

    def _spawn(self, coro: Coroutine[None, None, None]) -> asyncio.Task[None]:
        t = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(t)
        t.add_done_callback(self.tasks.discard)
        return t

    # -- tasks ---------------------------------------------------------------
    async def _connect(self) -> None:
        p = self.proxy
        while p._blackhole:  # behind a dead route the target sees nothing
            await p._wait_change()
        loop = asyncio.get_running_loop()
        try:
            await asyncio.wait_for(
                loop.create_connection(lambda: self.upstream, p.target_host, p.target_port),
                CONNECT_TIMEOUT)
        except (OSError, TimeoutError):
            p.stats["upstream_failed"] += 1
            self.close(rst=True)  # the client sees what a refused connect looks like
            return
        self.connected = True
        if self.closing:
            return
        self._spawn(self._pump(self.c2u))
        self._spawn(self._pump(self.u2c))

    async def _pump(self, d: _Direction) -> None:
        p = self.proxy
        loop = asyncio.get_running_loop()
        try:
            while True:
                if not d.pending:
                    if d.eof:
                        break
                    d.wake.clear()
                    await d.wake.wait()
                    continue
                if p._blackhole:
                    await p._wait_change()
                    continue
                now = loop.time()
                arrived, chunk = d.pending[0]
                if p._delay and now < arrived + p._delay:
                    await p._wait_change(arrived + p._delay - now)
                    continue
                rate = p._throttle
                if rate:
                    if now < d.next_t:
                        await p._wait_change(d.next_t - now)
                        continue
                    n = min(len(chunk), max(1, int(rate * THROTTLE_SLICE_S)))
                    d.next_t = max(now, d.next_t) + n / rate
                else:
                    n = len(chunk)
                if n < len(chunk):
                    d.pending[0] = (arrived, chunk[n:])
                    chunk = chunk[:n]
                else:
                    d.pending.popleft()
                d.nbytes -= n
                d.dst.transport.write(chunk)
                p.stats[d.counter] += n
                self.update_reading()
                await d.dst.writable.wait()
                if self.closing:
                    return
            # src sent FIN and everything it sent has been forwarded
            t = d.dst.transport
            if t.can_write_eof() and not t.is_closing():
                t.write_eof()
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - a pump must never take the proxy down: reset this pair
            self.close(rst=True)
            return
        self.finished += 1
        if self.finished == 2:
            self.close()  # both directions half-closed: done


class FaultProxy:
    """An asyncio TCP proxy to (target_host, target_port) that injects faults."""

    def __init__(self, target_host: str, target_port: int, listen_host: str = "127.0.0.1",
                 listen_port: int = 0, seed: int = 0) -> None:
        self.target_host = target_host
        self.target_port = int(target_port)
        self.listen_host = listen_host
        self.listen_port = int(listen_port)
        self.seed = seed  # kept for FaultSchedule / reports; the proxy itself is deterministic
        self.port: int | None = None
        self._server: asyncio.Server | None = None
        self._pairs: set[_Pair] = set()
        self._stopping = False
        self._blackhole = False
        self._refuse = False
        self._delay = 0.0
        self._throttle: float | None = None
        self._changed: asyncio.Future[None] | None = None
        self.stats: dict[str, Any] = {
            "accepted": 0, "refused": 0, "upstream_failed": 0, "live": 0,
            "bytes_to_target": 0, "bytes_to_client": 0,
            "faults": {name: 0 for name in (*KINDS, "heal")}}

    async def start(self) -> FaultProxy:
        loop = asyncio.get_running_loop()
        self._changed = loop.create_future()
        self._server = await loop.create_server(lambda: _Pair(self).client,
                                                self.listen_host, self.listen_port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        """Close the listener and every connection; returns within ~2 s whatever the peers do."""
        self._stopping = True
        if self._server is not None:
            self._server.close()
        pairs = list(self._pairs)
        for pair in pairs:
            pair.close(rst=False, grace=STOP_GRACE)
        if pairs:
            await asyncio.wait([p.done for p in pairs], timeout=STOP_GRACE + 0.3)
        for pair in pairs:
            pair._force()
            for t in list(pair.tasks):
                t.cancel()
        if self._server is not None:
            try:
                await asyncio.wait_for(self._server.wait_closed(), 0.3)
            except TimeoutError:
                pass
        self._pairs.clear()
        self.stats["live"] = 0
        self._notify()

    @property
    def address(self) -> tuple[str, int | None]:
        return (self.listen_host, self.port)

    @property
    def modes(self) -> dict[str, bool | float | None]:
        return {"blackhole": self._blackhole, "refuse": self._refuse,
                "delay": self._delay, "throttle": self._throttle}

    @property
    def connections(self) -> int:
        return len(self._pairs)

    # -- faults ----------------------------------------------------------------
    def drop(self) -> int:
        """Close every current connection cleanly (FIN to both peers). Returns how many."""
        return self._close_all("drop", rst=False)

    def reset(self) -> int:
        """Abort every current connection with an RST to both peers. Returns how many."""
        return self._close_all("reset", rst=True)

    def blackhole(self) -> None:
        self._blackhole = True
        self._fault("blackhole")

    def refuse(self) -> None:
        self._refuse = True
        self._fault("refuse")

    def delay(self, seconds: float) -> None:
        self._delay = KINDS["delay"].check(seconds)
        self._fault("delay")

    def throttle(self, bytes_per_s: float) -> None:
        self._throttle = KINDS["throttle"].check(bytes_per_s)
        self._fault("throttle")

    def heal(self) -> None:
        self._blackhole = False
        self._refuse = False
        self._delay = 0.0
        self._throttle = None
        self._fault("heal")

    # -- internals -------------------------------------------------------------
    def _close_all(self, kind: str, rst: bool) -> int:
        pairs = list(self._pairs)
        for pair in pairs:
            pair.close(rst=rst)
        self.stats["faults"][kind] += 1
        return len(pairs)

    def _fault(self, kind: str) -> None:
        self.stats["faults"][kind] += 1
        for pair in list(self._pairs):
            pair.update_reading()
        self._notify()

    def _notify(self) -> None:
        fut = self._changed
        if fut is None:
            return
        self._changed = fut.get_loop().create_future()
        if not fut.done():
            fut.set_result(None)

    async def _wait_change(self, timeout: float | None = None) -> None:
        """Wait until a mode changes, or timeout seconds."""
        await asyncio.wait([self._changed], timeout=timeout)

    def _forget(self, pair: _Pair) -> None:
        self._pairs.discard(pair)
        self.stats["live"] = len(self._pairs)
