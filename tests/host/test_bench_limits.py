"""A bounded bench: deadlines for the first request head, a WebSocket's
register/subscribe and a request body; a cap on unauthenticated
connections (2,000 idle ones do not keep a real device out); accept errors
logged once per interval. Benches listen on 127.0.0.1; the two that run
out of file descriptors on purpose run in a process of their own."""

import asyncio
import errno
import json
import logging
import os
import resource
import select
import signal
import socket
import subprocess
import sys
import time

import aiohttp
import pytest

from host_tools.bench import Limits, add_device, start_bench
from host_tools.bench.limits import AcceptErrors
from host_tools.paths import ROOT

DEV = "limits-door-1"
TOKEN = "tok_limits"
TIMEOUT = 5


@pytest.fixture
async def make_bench(tmp_path):
    started = []

    async def make(**limits):
        b = await start_bench("127.0.0.1", 0, str(tmp_path / f"b{len(started)}.sqlite3"), limits=Limits(**limits))
        started.append(b)
        b.store.add_device(DEV, TOKEN)
        return b

    yield make
    for b in started:
        await asyncio.wait_for(b.stop(), TIMEOUT)


def raw(bench, data=b""):
    s = socket.create_connection(("127.0.0.1", bench.port), timeout=TIMEOUT)
    if data:
        s.sendall(data)
    return s


async def read_all(s, timeout=TIMEOUT):
    """Everything the bench sends until it closes (bounded in time)."""
    def read():
        s.settimeout(timeout)
        out = b""
        try:
            while chunk := s.recv(4096):
                out += chunk
        except TimeoutError:
            out += b"[still open]"
        except ConnectionResetError:
            out += b"[reset]"
        return out
    return await asyncio.to_thread(read)


async def registered_device(session, bench):
    ws = await asyncio.wait_for(session.ws_connect(bench.url), TIMEOUT)
    await ws.send_json({"type": "register", "device_id": DEV, "token": TOKEN})
    assert json.loads((await ws.receive(timeout=TIMEOUT)).data)["type"] == "registered"
    return ws


async def alive(ws):
    """Answers a ping (an admin may hear broadcasts first)."""
    await ws.send_json({"type": "ping"})
    for _ in range(10):
        msg = await ws.receive(timeout=TIMEOUT)
        if msg.type != aiohttp.WSMsgType.TEXT:
            return False
        if json.loads(msg.data) == {"type": "pong"}:
            return True
    return False


# -- deadlines ---------------------------------------------------------------------------

async def test_a_connection_that_sends_no_complete_head_is_closed_with_408(make_bench):
    bench = await make_bench(head_deadline_s=0.5)
    silent, half = raw(bench), raw(bench, b"GET /api/stats HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    t0 = time.monotonic()
    for s in (silent, half):
        got = await read_all(s)
        assert got.startswith(b"HTTP/1.1 408 Request Timeout") and b"no complete request head within 0.5s" in got
        assert not got.endswith(b"[still open]")
        s.close()
    assert time.monotonic() - t0 < 3
    assert bench.stats["errors"]["head_timeout"] == 2


async def test_a_half_sent_head_on_a_kept_alive_connection_is_closed(make_bench):
    bench = await make_bench(keepalive_s=0.5)
    s = raw(bench, b"GET /api/stats HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    await asyncio.sleep(0.2)
    s.sendall(b"GET /api/stats HTTP/1.1\r\nHost: 127")
    got = await read_all(s)
    assert got.startswith(b"HTTP/1.1 200") and got.count(b"HTTP/1.1") == 1 and not got.endswith(b"[still open]")
    s.close()


async def test_a_body_that_does_not_arrive_is_answered_408(make_bench):
    bench = await make_bench(body_deadline_s=0.5)
    s = raw(bench, b"POST /api/device-http HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                   b"Content-Length: 100\r\n\r\n{\"cmd\": ")
    got = await read_all(s)
    s.close()
    assert got.startswith(b"HTTP/1.1 408")
    body = json.loads(got.split(b"\r\n\r\n", 1)[1].split(b"[")[0])
    assert body == {"ret": "error", "result": False, "reason": "request body not received within 0.5s"}
    assert bench.stats["errors"]["http_timeout"] == 1


async def test_a_websocket_must_register_or_subscribe_in_time(make_bench, session):
    bench = await make_bench(auth_deadline_s=0.5)
    idle = await session.ws_connect(bench.url)
    await idle.send_json({"type": "ping"})   # answered, but no substitute for registering
    assert json.loads((await idle.receive(timeout=TIMEOUT)).data) == {"type": "pong"}
    msg = await idle.receive(timeout=TIMEOUT)
    assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 1008
    assert msg.extra == "no register or subscribe within 0.5s"
    dev = await registered_device(session, bench)
    adm = await session.ws_connect(bench.url)
    await adm.send_json({"type": "subscribe", "role": "admin"})
    await asyncio.sleep(1)
    assert await alive(dev) and await alive(adm)
    assert bench.stats["errors"]["auth_timeout"] == 1


# -- the cap on unauthenticated connections ------------------------------------------------

async def test_over_the_cap_the_oldest_unauthenticated_connection_is_closed(make_bench, session):
    bench = await make_bench(max_unauthenticated=4)
    dev = await registered_device(session, bench)   # authenticated: never counted
    idle = []
    for _ in range(10):
        idle.append(raw(bench))
        await asyncio.sleep(0.02)   # accepted in this order
    for s in idle[:6]:
        got = await read_all(s)
        assert got.startswith(b"HTTP/1.1 503") and b"too many unauthenticated connections" in got, got
    for s in idle[6:]:
        assert await read_all(s, timeout=0.2) == b"[still open]"
    assert bench.stats["errors"]["too_many_unauthenticated"] == 6
    assert await alive(dev)
    # a device arriving now evicts the oldest idle one and gets in
    dev2 = await session.ws_connect(bench.url)
    await dev2.send_json({"type": "register", "device_id": DEV, "token": TOKEN})
    assert json.loads((await dev2.receive(timeout=TIMEOUT)).data)["type"] == "registered"
    assert (await read_all(idle[6])).startswith(b"HTTP/1.1 503")
    for s in idle:
        s.close()


async def test_an_unauthenticated_websocket_over_the_cap_is_closed_with_1013(make_bench, session):
    bench = await make_bench(max_unauthenticated=2)
    first = await session.ws_connect(bench.url)
    await session.ws_connect(bench.url)
    await session.ws_connect(bench.url)
    msg = await first.receive(timeout=TIMEOUT)
    assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 1013
    assert msg.extra == "too many unauthenticated connections"


def _bench_process(tmp_path, nofile):
    """`doorlink bench` in a process of its own, its file descriptors
    capped at `nofile`: (process, port, stderr file)."""
    db = tmp_path / "bench.sqlite3"
    add_device(db, DEV, TOKEN)
    err = tmp_path / "bench.err"
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    with open(err, "wb") as err_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "host_tools.cli", "bench", "--port", "0", "--db", str(db)], cwd=ROOT,
            stdout=subprocess.PIPE, stderr=err_file,
            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, hard)))
    said = select.poll()
    said.register(proc.stdout, select.POLLIN)
    assert said.poll(20_000), "the bench said nothing within 20s"
    line = proc.stdout.readline().decode()
    assert "bench listening on ws://127.0.0.1:" in line, line + err.read_text()
    return proc, int(line.split("ws://127.0.0.1:")[1].split("/")[0]), err


def _stop(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
    proc.stdout.close()


def _open_idle(port, count, deadline):
    """`count` idle TCP connections, at most 64 of them still connecting at
    a time (until `deadline`: a bench out of files accepts no more)."""
    socks, waiting = [], select.poll()
    pending = set()
    for _ in range(count):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        socks.append(s)
        waiting.register(s, select.POLLOUT)
        pending.add(s.fileno())
        while len(pending) >= 64 and time.monotonic() < deadline:
            for fd, _ in waiting.poll(200):
                waiting.unregister(fd)
                pending.discard(fd)
    return socks


def _more_files(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        if hard != resource.RLIM_INFINITY and hard < need:
            pytest.skip(f"needs {need} file descriptors, the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
    return soft, hard


async def test_2000_idle_connections_do_not_keep_a_real_device_out(tmp_path, session):
    # The bench may hold 1024 files: before the cap, ~1000 idle connections
    # used them all and no device got in.
    soft, hard = _more_files(4096)
    proc, port, err = _bench_process(tmp_path, 1024)
    idle = []
    try:
        idle = await asyncio.to_thread(_open_idle, port, 2000, time.monotonic() + 30)
        url = f"ws://127.0.0.1:{port}/ws"
        acked = None
        for _ in range(20):   # a device retries, as the agent does (bounded)
            try:
                ws = await asyncio.wait_for(session.ws_connect(url), 3)
                await ws.send_json({"type": "register", "device_id": DEV, "token": TOKEN})
                assert json.loads((await ws.receive(timeout=5)).data)["type"] == "registered"
                await ws.send_json({"type": "event", "event_type": "door_opened", "id": 1, "time": 1781255730})
                acked = json.loads((await ws.receive(timeout=5)).data)
                await ws.close()
                break
            except (TimeoutError, aiohttp.ClientError, OSError, TypeError, ValueError, AssertionError):
                await asyncio.sleep(0.5)
        assert acked == {"type": "ack", "id": 1}, err.read_text()[-2000:]
        # The bench may still be accepting the last of the 2000 (a loaded
        # machine): its count catches up, within a bounded wait.
        for _ in range(50):
            async with session.get(f"http://127.0.0.1:{port}/api/stats") as r:
                stats = await r.json()
            if stats["errors"].get("too_many_unauthenticated", 0) >= 2000 - 64 - 1:
                break
            await asyncio.sleep(0.2)
        assert stats["errors"]["too_many_unauthenticated"] >= 2000 - 64 - 1, stats
    finally:
        for s in idle:
            s.close()
        _stop(proc)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


async def test_accept_errors_are_logged_once_per_interval(tmp_path, session):
    # 48 files: the bench runs out of them after a few connections, and
    # asyncio reports every failed accept (3.5 MB of tracebacks in 5 s before).
    proc, port, err = _bench_process(tmp_path, 48)
    idle = []
    try:
        idle = await asyncio.to_thread(_open_idle, port, 200, time.monotonic() + 2)
        await asyncio.sleep(4)
        text = err.read_text()
        assert len(text) < 4000, text[:4000]
        assert 1 <= text.count("cannot accept connections: Too many open files") <= 2, text
        assert "Traceback" not in text
    finally:
        for s in idle:
            s.close()
    try:
        for _ in range(50):   # the bench has its files back once the idle connections are gone
            try:
                async with session.get(f"http://127.0.0.1:{port}/api/stats") as r:
                    stats = await r.json()
                break
            except aiohttp.ClientError:
                await asyncio.sleep(0.2)
        assert stats["errors"]["accept_failed"] >= 1, stats
    finally:
        _stop(proc)


async def test_accept_errors_are_counted_and_other_reports_pass_through(caplog):
    loop = asyncio.get_running_loop()
    seen, counted = [], []
    loop.set_exception_handler(lambda _loop, context: seen.append(context["message"]))
    accept_errors = AcceptErrors(counted.append, every_s=60)
    accept_errors.install(loop)
    try:
        caplog.set_level(logging.INFO, "doorlink.bench")
        for _ in range(1000):
            loop.call_exception_handler({"message": "socket.accept() out of system resource",
                                         "exception": OSError(errno.EMFILE, os.strerror(errno.EMFILE))})
        loop.call_exception_handler({"message": "something else"})
    finally:
        accept_errors.uninstall()
    assert counted == ["accept_failed"] * 1000 and seen == ["something else"]
    said = [r.getMessage() for r in caplog.records if r.name == "doorlink.bench"]
    assert said == ["cannot accept connections: Too many open files"]
    assert loop.get_exception_handler() is not accept_errors.handle
    loop.set_exception_handler(None)
