# `doorlink chaos`: a TCP fault proxy for proving the agent loses nothing when
# the network misbehaves. It sits between the agent and the bench cloud:
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
import argparse
import asyncio
import collections
import ipaddress
import math
import random
import socket
import struct
import sys
import threading
from typing import NamedTuple

KINDS = ("drop", "reset", "blackhole", "refuse", "delay", "throttle")
MODES = ("blackhole", "refuse", "delay", "throttle")

CONNECT_TIMEOUT = 5.0     # dialing the target
CLOSE_GRACE = 2.0         # a clean close that has not finished by then is aborted
STOP_GRACE = 0.5          # stop(): clean close first, then abort
HIGH_WATER = 256 * 1024   # bytes held per direction before the proxy stops reading
THROTTLE_SLICE_S = 0.05   # throttle sends slices of bps * this many bytes


def _rst(transport):
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

    def __init__(self, pair, name):
        self.pair = pair
        self.name = name
        self.transport = None
        self.reading = True
        self.writable = asyncio.Event()
        self.writable.set()
        self.lost = asyncio.get_running_loop().create_future()

    def connection_made(self, transport):
        self.transport = transport
        self.pair._made(self)

    def data_received(self, data):
        self.pair._data(self, data)

    def eof_received(self):
        self.pair._eof(self)
        return True  # keep our write half open: half-close is forwarded

    def connection_lost(self, exc):
        self.writable.set()
        if not self.lost.done():
            self.lost.set_result(exc)
        self.pair._lost(self, exc)

    def pause_writing(self):
        self.writable.clear()

    def resume_writing(self):
        self.writable.set()

    def set_reading(self, want):
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

    def __init__(self, src, dst, counter):
        self.src = src
        self.dst = dst
        self.counter = counter          # stats key for bytes forwarded
        self.pending = collections.deque()  # (arrival time, bytes)
        self.nbytes = 0
        self.eof = False
        self.wake = asyncio.Event()
        self.next_t = 0.0               # throttle: earliest time of the next slice


class _Pair:
    """A client connection and its connection to the target, pumped both ways."""

    def __init__(self, proxy):
        self.proxy = proxy
        self.client = _Side(self, "client")
        self.upstream = _Side(self, "upstream")
        self.c2u = _Direction(self.client, self.upstream, "bytes_to_target")
        self.u2c = _Direction(self.upstream, self.client, "bytes_to_client")
        self.connected = False  # the upstream connect has completed
        self.closing = False
        self.rst = False
        self.tasks = set()
        self.finished = 0
        self.done = asyncio.get_running_loop().create_future()

    # -- protocol callbacks --------------------------------------------------
    def _made(self, side):
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
            _rst(side.transport) if self.rst else side.transport.close()
            return
        self.update_reading()

    def _data(self, side, data):
        if self.closing:
            return  # a lingering clean close: input is read and discarded
        d = self.c2u if side is self.client else self.u2c
        d.pending.append((asyncio.get_running_loop().time(), data))
        d.nbytes += len(data)
        d.wake.set()
        self.update_reading()

    def _eof(self, side):
        if self.closing:
            side.transport.close()  # the peer has answered our FIN: done with it
            return
        d = self.c2u if side is self.client else self.u2c
        d.eof = True
        d.wake.set()

    def _lost(self, side, exc):
        if side is self.upstream and not self.connected and not self.closing:
            return  # a connect that failed or timed out: _connect() reports it
        if not self.closing:
            # The peer reset us: pass the reset on. Otherwise (we closed it,
            # e.g. the other side's pump finished) close the rest cleanly.
            self.close(rst=exc is not None)
        self._check_done()

    # -- control -------------------------------------------------------------
    def update_reading(self):
        if self.closing:  # lingering close: keep reading (and discarding) until the peer closes
            self.client.set_reading(True)
            self.upstream.set_reading(True)
            return
        want = not self.proxy._blackhole
        self.client.set_reading(want and self.c2u.nbytes < HIGH_WATER)
        self.upstream.set_reading(want and self.u2c.nbytes < HIGH_WATER)

    def close(self, rst=False, grace=CLOSE_GRACE):
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
                t.write_eof()
                side.set_reading(True)
        if not rst:
            asyncio.get_running_loop().call_later(grace, self._force)
        self._check_done()

    def _force(self):
        for side in (self.client, self.upstream):
            if side.transport is not None and not side.lost.done():
                side.transport.abort()

    def _check_done(self):
        if (self.closing and self.client.lost.done() and self.upstream.lost.done()
                and not self.done.done()):
            self.done.set_result(None)

    def _spawn(self, coro):
        t = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(t)
        t.add_done_callback(self.tasks.discard)
        return t

    # -- tasks ---------------------------------------------------------------
    async def _connect(self):
        p = self.proxy
        while p._blackhole:  # behind a dead route the target sees nothing
            await p._wait_change()
        loop = asyncio.get_running_loop()
        try:
            await asyncio.wait_for(
                loop.create_connection(lambda: self.upstream, p.target_host, p.target_port),
                CONNECT_TIMEOUT)
        except (OSError, asyncio.TimeoutError):
            p.stats["upstream_failed"] += 1
            self.close(rst=True)  # the client sees what a refused connect looks like
            return
        self.connected = True
        if self.closing:
            return
        self._spawn(self._pump(self.c2u))
        self._spawn(self._pump(self.u2c))

    async def _pump(self, d):
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
        except Exception:  # a pump must never take the proxy down: reset this pair
            self.close(rst=True)
            return
        self.finished += 1
        if self.finished == 2:
            self.close()  # both directions half-closed: done


class FaultProxy:
    """An asyncio TCP proxy to (target_host, target_port) that injects faults."""

    def __init__(self, target_host, target_port, listen_host="127.0.0.1", listen_port=0, seed=0):
        self.target_host = target_host
        self.target_port = int(target_port)
        self.listen_host = listen_host
        self.listen_port = int(listen_port)
        self.seed = seed  # kept for FaultSchedule / reports; the proxy itself is deterministic
        self.port = None
        self._server = None
        self._pairs = set()
        self._stopping = False
        self._blackhole = False
        self._refuse = False
        self._delay = 0.0
        self._throttle = None
        self._changed = None
        self.stats = {"accepted": 0, "refused": 0, "upstream_failed": 0, "live": 0,
                      "bytes_to_target": 0, "bytes_to_client": 0,
                      "faults": {k: 0 for k in KINDS + ("heal",)}}

    async def start(self):
        loop = asyncio.get_running_loop()
        self._changed = loop.create_future()
        self._server = await loop.create_server(lambda: _Pair(self).client,
                                                self.listen_host, self.listen_port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self):
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
            except asyncio.TimeoutError:
                pass
        self._pairs.clear()
        self.stats["live"] = 0
        self._notify()

    @property
    def address(self):
        return (self.listen_host, self.port)

    @property
    def modes(self):
        return {"blackhole": self._blackhole, "refuse": self._refuse,
                "delay": self._delay, "throttle": self._throttle}

    @property
    def connections(self):
        return len(self._pairs)

    # -- faults ----------------------------------------------------------------
    def drop(self):
        """Close every current connection cleanly (FIN to both peers). Returns how many."""
        return self._close_all("drop", rst=False)

    def reset(self):
        """Abort every current connection with an RST to both peers. Returns how many."""
        return self._close_all("reset", rst=True)

    def blackhole(self):
        self._blackhole = True
        self._fault("blackhole")

    def refuse(self):
        self._refuse = True
        self._fault("refuse")

    def delay(self, seconds):
        seconds = float(seconds)
        if not (seconds >= 0 and math.isfinite(seconds)):
            raise ValueError("delay must be a finite number of seconds >= 0")
        self._delay = seconds
        self._fault("delay")

    def throttle(self, bytes_per_s):
        bytes_per_s = float(bytes_per_s)
        if not (bytes_per_s > 0 and math.isfinite(bytes_per_s)):
            raise ValueError("throttle must be a finite number of bytes/s > 0")
        self._throttle = bytes_per_s
        self._fault("throttle")

    def heal(self):
        self._blackhole = False
        self._refuse = False
        self._delay = 0.0
        self._throttle = None
        self._fault("heal")

    # -- internals -------------------------------------------------------------
    def _close_all(self, kind, rst):
        pairs = list(self._pairs)
        for pair in pairs:
            pair.close(rst=rst)
        self.stats["faults"][kind] += 1
        return len(pairs)

    def _fault(self, kind):
        self.stats["faults"][kind] += 1
        for pair in list(self._pairs):
            pair.update_reading()
        self._notify()

    def _notify(self):
        fut = self._changed
        if fut is None:
            return
        self._changed = fut.get_loop().create_future()
        if not fut.done():
            fut.set_result(None)

    async def _wait_change(self, timeout=None):
        """Wait until a mode changes, or timeout seconds."""
        await asyncio.wait([self._changed], timeout=timeout)

    def _forget(self, pair):
        self._pairs.discard(pair)
        self.stats["live"] = len(self._pairs)


# -- schedules ---------------------------------------------------------------

class Step(NamedTuple):
    at_s: float     # seconds from the start of the schedule
    kind: str       # one of KINDS
    hold_s: float   # how long the mode lasts before heal(); 0 for drop/reset


class FaultSchedule:
    """A reproducible, non-overlapping list of faults.

    delay and throttle steps use the schedule-wide delay_s and throttle_bps.
    """

    def __init__(self, steps, duration_s, delay_s=0.5, throttle_bps=2000, seed=None):
        self.steps = [Step(*s) for s in steps]
        self.duration_s = float(duration_s)
        self.delay_s = delay_s
        self.throttle_bps = throttle_bps
        self.seed = seed

    @classmethod
    def random(cls, seed, duration_s, mean_gap_s=2.0, kinds=KINDS, delay_s=0.5,
               throttle_bps=2000):
        kinds = tuple(kinds)
        bad = [k for k in kinds if k not in KINDS]
        if bad or not kinds:
            raise ValueError("kinds must be a non-empty subset of %s (got %s)"
                             % (", ".join(KINDS), ", ".join(bad) or "nothing"))
        if duration_s <= 0 or mean_gap_s <= 0:
            raise ValueError("duration_s and mean_gap_s must be > 0")
        rng = random.Random(seed)
        steps = []
        t = 0.0  # end of the previous step (its hold included)
        for _ in range(100_000):  # bounded: gaps are >= 1 ms, durations are finite
            at = round(t + max(0.001, rng.expovariate(1.0 / mean_gap_s)), 3)
            if at >= duration_s:
                break
            kind = rng.choice(kinds)
            hold = 0.0
            if kind in MODES:
                hold = round(min(rng.uniform(0.25, 1.0) * mean_gap_s, duration_s - at), 3)
            steps.append(Step(at, kind, hold))
            t = at + hold
        return cls(steps, duration_s, delay_s, throttle_bps, seed)

    def describe(self):
        out = []
        for s in self.steps:
            what = s.kind
            if s.kind == "delay":
                what = "delay %gs" % self.delay_s
            elif s.kind == "throttle":
                what = "throttle %g B/s" % self.throttle_bps
            if s.hold_s:
                out.append("t=%.3fs %s for %.3fs, then heal" % (s.at_s, what, s.hold_s))
            else:
                out.append("t=%.3fs %s" % (s.at_s, what))
        return out

    def apply(self, proxy, step):
        """Apply one step to proxy now; returns a description of what was done."""
        if step.kind == "drop":
            return "drop (%d connections closed)" % proxy.drop()
        if step.kind == "reset":
            return "reset (%d connections reset)" % proxy.reset()
        if step.kind == "delay":
            proxy.delay(self.delay_s)
            return "delay %gs" % self.delay_s
        if step.kind == "throttle":
            proxy.throttle(self.throttle_bps)
            return "throttle %g B/s" % self.throttle_bps
        getattr(proxy, step.kind)()
        return step.kind

    async def run(self, proxy, clock_scale=1.0, on_event=None):
        """Apply the steps at their times, heal after each hold; returns after the duration.

        Real seconds = schedule seconds * clock_scale (0.1 runs ten times as fast).
        on_event(elapsed_real_s, text) is called for every fault and heal.
        Returns the list of (elapsed_real_s, text). Heals on the way out, even if cancelled.
        """
        loop = asyncio.get_running_loop()
        start = loop.time()
        applied = []

        def note(text):
            elapsed = loop.time() - start
            applied.append((elapsed, text))
            if on_event is not None:
                on_event(elapsed, text)

        async def until(schedule_t):
            delay = start + schedule_t * clock_scale - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)

        held = False
        try:
            for step in self.steps:
                await until(step.at_s)
                note(self.apply(proxy, step))
                if step.hold_s:
                    held = True
                    await until(step.at_s + step.hold_s)
                    proxy.heal()
                    held = False
                    note("heal")
            await until(self.duration_s)
        finally:
            if held:
                proxy.heal()
        return applied


# -- manual mode -------------------------------------------------------------

class Command(NamedTuple):
    action: str
    arg: float | None = None


_NO_ARG = ("drop", "reset", "blackhole", "refuse", "heal", "stats", "quit", "help")
_ALIASES = {"exit": "quit", "q": "quit", "?": "help"}
HELP = ("commands: drop | reset | blackhole | refuse | delay SECONDS | throttle BYTES_PER_S"
        " | heal | stats | quit")


def parse_command(line):
    """Parse one manual-mode line into a Command; None for a blank line.

    Raises ValueError with a message meant for the technician.
    """
    words = line.split()
    if not words:
        return None
    name = _ALIASES.get(words[0].lower(), words[0].lower())
    args = words[1:]
    if name in _NO_ARG:
        if args:
            raise ValueError("%s takes no argument" % name)
        return Command(name)
    if name in ("delay", "throttle"):
        unit = "seconds, e.g. 'delay 0.5'" if name == "delay" else "bytes/s, e.g. 'throttle 1000'"
        if len(args) != 1:
            raise ValueError("%s needs one argument: %s" % (name, unit))
        try:
            value = float(args[0])
        except ValueError:
            raise ValueError("%s: %r is not a number (%s)" % (name, args[0], unit)) from None
        if not math.isfinite(value) or value < 0 or (name == "throttle" and value == 0):
            raise ValueError("%s: must be %s, got %s" % (
                name, "a number >= 0" if name == "delay" else "a number > 0", args[0]))
        return Command(name, value)
    raise ValueError("unknown command %r; %s" % (words[0], HELP))


def format_stats(proxy):
    s = proxy.stats
    faults = ", ".join("%s=%d" % (k, v) for k, v in s["faults"].items() if v) or "none"
    modes = [k for k in ("blackhole", "refuse") if proxy.modes[k]]
    if proxy.modes["delay"]:
        modes.append("delay %gs" % proxy.modes["delay"])
    if proxy.modes["throttle"]:
        modes.append("throttle %g B/s" % proxy.modes["throttle"])
    return ("connections: %d live, %d accepted, %d refused, %d target unreachable; "
            "bytes: %d to target, %d to client; faults: %s; modes: %s"
            % (s["live"], s["accepted"], s["refused"], s["upstream_failed"],
               s["bytes_to_target"], s["bytes_to_client"], faults, ", ".join(modes) or "none"))


def apply_command(proxy, cmd):
    """Carry out a parsed Command on proxy; returns the line to print."""
    a = cmd.action
    if a == "drop":
        return "dropped %d connections" % proxy.drop()
    if a == "reset":
        return "reset %d connections" % proxy.reset()
    if a == "delay":
        proxy.delay(cmd.arg)
        return "delay %gs on every chunk" % cmd.arg
    if a == "throttle":
        proxy.throttle(cmd.arg)
        return "throttled to %g bytes/s per direction" % cmd.arg
    if a in ("blackhole", "refuse", "heal"):
        getattr(proxy, a)()
        return {"blackhole": "blackhole: nothing forwarded, nothing closed",
                "refuse": "refusing new connections",
                "heal": "healed: all modes cleared"}[a]
    if a == "stats":
        return format_stats(proxy)
    if a == "help":
        return HELP
    raise ValueError("cannot apply %r" % (a,))


def _stdin_lines(stream):
    """Lines of a blocking stream as an asyncio.Queue; None marks EOF.

    A daemon thread reads, so a Ctrl-C never waits for the technician to press Enter.
    """
    loop = asyncio.get_running_loop()
    q = asyncio.Queue()

    def reader():
        try:
            for line in iter(stream.readline, ""):
                loop.call_soon_threadsafe(q.put_nowait, line)
        except (OSError, ValueError):
            pass
        finally:
            try:
                loop.call_soon_threadsafe(q.put_nowait, None)
            except RuntimeError:
                pass  # loop already closed

    threading.Thread(target=reader, name="chaos-stdin", daemon=True).start()
    return q


async def run_manual(proxy, stream=None, out=None, stop=None):
    """Read commands from stream (default stdin) until quit, EOF or stop is set."""
    out = out or sys.stdout
    lines = _stdin_lines(stream or sys.stdin)
    stop = stop or asyncio.Event()
    print(HELP, file=out, flush=True)
    stopper = asyncio.ensure_future(stop.wait())
    try:
        while not stop.is_set():
            getter = asyncio.ensure_future(lines.get())
            await asyncio.wait([getter, stopper], return_when=asyncio.FIRST_COMPLETED)
            if not getter.done():
                getter.cancel()
                break
            line = getter.result()
            if line is None:
                print("stdin closed; stopping", file=out, flush=True)
                break
            try:
                cmd = parse_command(line)
            except ValueError as e:
                print("error: %s" % e, file=out, flush=True)
                continue
            if cmd is None:
                continue
            if cmd.action == "quit":
                break
            print(apply_command(proxy, cmd), file=out, flush=True)
    finally:
        stopper.cancel()


# -- CLI ---------------------------------------------------------------------

def parse_hostport(text, default_port=None):
    """'host:port', '[v6]:port' or (with default_port) 'host' -> (host, port)."""
    text = text.strip()
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep:
            raise ValueError("bad address %r" % text)
        port = rest[1:] if rest.startswith(":") else None
        if rest and not rest.startswith(":"):
            raise ValueError("bad address %r" % text)
    else:
        host, sep, port = text.rpartition(":")
        if not sep:
            host, port = text, None
    if port in (None, ""):
        if default_port is None:
            raise ValueError("%r needs a port: HOST:PORT" % text)
        port = default_port
    try:
        port = int(port)
    except ValueError:
        raise ValueError("bad port in %r" % text) from None
    if not host or not 0 <= port <= 65535:
        raise ValueError("bad address %r" % text)
    return host, port


def is_loopback(host):
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_kinds(text):
    kinds = tuple(k.strip().lower() for k in text.split(",") if k.strip())
    bad = [k for k in kinds if k not in KINDS]
    if bad or not kinds:
        raise ValueError("--kinds: choose from %s (got %s)" % (",".join(KINDS), text))
    return kinds


def add_parser(subparsers):
    p = subparsers.add_parser(
        "chaos", help="TCP fault proxy: drop, reset, blackhole, refuse, delay, throttle",
        description="A TCP proxy that injects network faults between the agent and the cloud. "
                    "Point the agent at the listening address. Without --manual it runs a "
                    "seeded random schedule of faults; with --manual it reads commands on stdin.")
    p.add_argument("--target", required=True, metavar="HOST:PORT", help="where to forward to")
    p.add_argument("--listen", default="127.0.0.1:0", metavar="HOST:PORT",
                   help="where to listen (default %(default)s: any free port on loopback)")
    p.add_argument("--allow-nonlocal", action="store_true",
                   help="allow --listen on a non-loopback address")
    p.add_argument("--seed", type=int, default=0, help="schedule seed (default %(default)s)")
    p.add_argument("--duration", type=float,
                   help="seconds to run (default 60 for a schedule; until quit with --manual)")
    p.add_argument("--mean-gap", type=float, default=2.0,
                   help="mean seconds between faults (default %(default)s)")
    p.add_argument("--kinds", default=",".join(KINDS),
                   help="comma-separated fault kinds (default %(default)s)")
    p.add_argument("--delay", type=float, default=0.5, dest="delay_s",
                   help="seconds for scheduled delay faults (default %(default)s)")
    p.add_argument("--throttle", type=float, default=2000, dest="throttle_bps",
                   help="bytes/s for scheduled throttle faults (default %(default)s)")
    p.add_argument("--manual", action="store_true", help="read commands from stdin instead")
    return p


def _say(line):
    print(line, flush=True)


async def _cli(args, target, listen, kinds):
    from host_tools.signals import stop_event

    proxy = FaultProxy(target[0], target[1], listen[0], listen[1], seed=args.seed)
    try:
        await proxy.start()
    except OSError as e:
        print("error: cannot listen on %s:%d (%s)" % (listen[0], listen[1], e.strerror or e),
              file=sys.stderr)
        return 1
    host = "[%s]" % listen[0] if ":" in listen[0] else listen[0]
    _say("listening on %s:%d -> %s:%d" % (host, proxy.port, target[0], target[1]))
    stop = stop_event()
    try:
        if args.manual:
            work = run_manual(proxy, stop=stop)
            limit = args.duration
        else:
            duration = args.duration if args.duration is not None else 60.0
            sched = FaultSchedule.random(args.seed, duration, args.mean_gap, kinds,
                                         args.delay_s, args.throttle_bps)
            _say("plan (seed %d, %gs, %d faults):" % (args.seed, duration, len(sched.steps)))
            for line in sched.describe():
                _say("  " + line)
            work = sched.run(proxy, on_event=lambda t, text: _say("[%8.3fs] %s" % (t, text)))
            limit = None  # the schedule ends itself after its duration
        task = asyncio.ensure_future(work)
        stopper = asyncio.ensure_future(stop.wait())
        await asyncio.wait([task, stopper], timeout=limit,
                           return_when=asyncio.FIRST_COMPLETED)
        for t in (task, stopper):
            t.cancel()
        await asyncio.wait([task], timeout=2)
        if task.done() and not task.cancelled() and task.exception() is not None:
            raise task.exception()
    finally:
        await proxy.stop()
    _say(format_stats(proxy))
    return 0


def main(args) -> int:
    try:
        target = parse_hostport(args.target)
        listen = parse_hostport(args.listen, default_port=0)
        kinds = parse_kinds(args.kinds)
        if args.duration is not None and args.duration <= 0:
            raise ValueError("--duration must be > 0")
        if args.mean_gap <= 0:
            raise ValueError("--mean-gap must be > 0")
        if not (args.delay_s >= 0 and args.throttle_bps > 0):
            raise ValueError("--delay must be >= 0 and --throttle > 0")
    except ValueError as e:
        print("error: %s" % e, file=sys.stderr)
        return 2
    if not is_loopback(listen[0]) and not args.allow_nonlocal:
        print("error: --listen %s is not a loopback address; this is a test tool. "
              "Pass --allow-nonlocal if you really mean it." % listen[0], file=sys.stderr)
        return 2
    try:
        return asyncio.run(_cli(args, target, listen, kinds))
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    _p = argparse.ArgumentParser(prog="chaos")
    add_parser(_p.add_subparsers(dest="cmd", required=True))
    sys.exit(main(_p.parse_args()))
