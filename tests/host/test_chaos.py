# The TCP fault proxy (host_tools/chaos.py), driven against a real echo server
# on 127.0.0.1. Every wait is bounded.
import argparse
import asyncio
import io
import subprocess
import sys
import time

import pytest

from host_tools.chaos import (Command, FaultProxy, FaultSchedule, Step, add_parser, apply_command,
                              is_loopback, main, parse_command, parse_hostport, parse_kinds,
                              run_manual)

T = 5  # bound on every wait


async def _echo(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


@pytest.fixture
async def echo():
    server = await asyncio.start_server(_echo, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()
    await asyncio.wait_for(server.wait_closed(), T)


@pytest.fixture
async def proxy(echo):
    p = await FaultProxy("127.0.0.1", echo).start()
    yield p
    await asyncio.wait_for(p.stop(), T)


async def _connect(proxy):
    return await asyncio.wait_for(asyncio.open_connection("127.0.0.1", proxy.port), T)


async def _roundtrip(r, w, data):
    w.write(data)
    await asyncio.wait_for(w.drain(), T)
    return await asyncio.wait_for(r.readexactly(len(data)), T)


async def _until(cond, timeout=T):
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def test_data_passes_both_ways(proxy):
    r, w = await _connect(proxy)
    assert await _roundtrip(r, w, b"hello") == b"hello"
    big = bytes(range(256)) * 1000
    assert await _roundtrip(r, w, big) == big
    assert proxy.stats["accepted"] == 1 and proxy.connections == 1
    assert proxy.stats["bytes_to_target"] == proxy.stats["bytes_to_client"] == 5 + len(big)
    w.close()
    # the client's FIN is forwarded, the echo server closes, the pair goes away
    await _until(lambda: proxy.connections == 0)


async def test_half_close_is_forwarded(proxy):
    r, w = await _connect(proxy)
    w.write(b"last words")
    w.write_eof()
    assert await asyncio.wait_for(r.read(), T) == b"last words"  # then EOF
    w.close()


async def test_drop_gives_the_client_eof(proxy):
    r, w = await _connect(proxy)
    assert await _roundtrip(r, w, b"x") == b"x"
    assert proxy.drop() == 1
    assert await asyncio.wait_for(r.read(100), T) == b""
    assert proxy.stats["faults"]["drop"] == 1
    await _until(lambda: proxy.connections == 0)
    w.close()


async def test_drop_while_the_client_is_sending_is_still_a_fin(proxy):
    # Closing a socket with unread input makes Linux send an RST; drop() must
    # still be a clean close, so it sends FIN and discards input until the peer closes.
    r, w = await _connect(proxy)
    proxy.blackhole()  # the proxy stops reading: the client's data sits unread
    w.write(b"u" * 500_000)
    await asyncio.sleep(0.2)
    proxy.drop()
    assert await asyncio.wait_for(r.read(100), T) == b""  # EOF, not ConnectionResetError
    w.close()
    await _until(lambda: proxy.connections == 0)


async def test_reset_gives_the_client_connection_reset(proxy):
    # On Linux an RST (SO_LINGER 0 then close) surfaces as ECONNRESET on the
    # next read, reliably: not as a clean EOF.
    r, w = await _connect(proxy)
    assert await _roundtrip(r, w, b"x") == b"x"
    assert proxy.reset() == 1
    with pytest.raises(ConnectionResetError):
        await asyncio.wait_for(r.read(100), T)
    assert proxy.stats["faults"]["reset"] == 1
    await _until(lambda: proxy.connections == 0)
    w.close()


async def test_blackhole_holds_then_heal_delivers_everything(proxy):
    r, w = await _connect(proxy)
    assert await _roundtrip(r, w, b"before") == b"before"
    proxy.blackhole()
    w.write(b"during the blackhole")
    await asyncio.wait_for(w.drain(), T)
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(r.read(100), 0.5)
    # not closed either way: no EOF seen, proxy still holds the pair
    assert not r.at_eof() and not w.is_closing() and proxy.connections == 1
    # a connection made during the blackhole is accepted and held; the target
    # is not even dialled until heal
    r2, w2 = await _connect(proxy)
    w2.write(b"second")
    await asyncio.wait_for(w2.drain(), T)
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(r2.read(100), 0.3)
    proxy.heal()
    assert await asyncio.wait_for(r.readexactly(20), T) == b"during the blackhole"
    assert await asyncio.wait_for(r2.readexactly(6), T) == b"second"
    assert await _roundtrip(r, w, b"after") == b"after"
    assert proxy.stats["faults"]["blackhole"] == 1 and proxy.stats["faults"]["heal"] == 1
    w.close()
    w2.close()


async def test_blackhole_holds_more_than_the_buffers_without_loss(proxy):
    r, w = await _connect(proxy)
    proxy.blackhole()
    payload = (bytes(range(251)) * 8000)[:2_000_000]
    w.write(payload)  # far beyond the proxy's high-water mark: backpressure, not loss
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(r.read(100), 0.5)
    proxy.heal()
    got = await asyncio.wait_for(r.readexactly(len(payload)), T)
    assert got == payload
    w.close()


async def test_refuse_closes_new_connections_but_not_existing_ones(proxy):
    r, w = await _connect(proxy)
    proxy.refuse()
    r2, w2 = await _connect(proxy)  # the kernel completes the handshake...
    with pytest.raises(ConnectionResetError):  # ...then the proxy resets it at once
        await asyncio.wait_for(r2.read(100), T)
    assert proxy.stats["refused"] == 1
    assert await _roundtrip(r, w, b"still here") == b"still here"
    proxy.heal()
    r3, w3 = await _connect(proxy)
    assert await _roundtrip(r3, w3, b"back") == b"back"
    for x in (w, w2, w3):
        x.close()


async def test_delay_adds_latency_and_keeps_order(proxy):
    r, w = await _connect(proxy)
    proxy.delay(0.3)
    t0 = time.monotonic()
    assert await _roundtrip(r, w, b"slow") == b"slow"
    assert time.monotonic() - t0 >= 0.3
    # latency, not bandwidth: ten writes in a row take about one delay each way, in order
    t0 = time.monotonic()
    for i in range(10):
        w.write(b"%d;" % i)
        await asyncio.sleep(0.01)
    want = b"".join(b"%d;" % i for i in range(10))
    assert await asyncio.wait_for(r.readexactly(len(want)), T) == want
    assert time.monotonic() - t0 < 2.0
    proxy.heal()
    t0 = time.monotonic()
    assert await _roundtrip(r, w, b"fast") == b"fast"
    assert time.monotonic() - t0 < 0.3
    w.close()


async def test_throttle_limits_bandwidth(proxy):
    r, w = await _connect(proxy)
    proxy.throttle(10_000)
    t0 = time.monotonic()
    data = b"z" * 20_000
    assert await _roundtrip(r, w, data) == data
    assert time.monotonic() - t0 >= 1.5
    w.close()


async def test_target_down_resets_the_client():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]  # nothing listens once this socket is closed
    p = await FaultProxy("127.0.0.1", dead).start()
    try:
        r, w = await _connect(p)
        with pytest.raises(ConnectionResetError):
            await asyncio.wait_for(r.read(100), T)
        assert p.stats["upstream_failed"] == 1
        w.close()
    finally:
        await asyncio.wait_for(p.stop(), T)


async def test_stop_with_live_connections_is_prompt(echo):
    p = await FaultProxy("127.0.0.1", echo).start()
    conns = [await _connect(p) for _ in range(3)]
    for r, w in conns:
        assert await _roundtrip(r, w, b"hi") == b"hi"
    p.blackhole()  # pumps parked, plus a held connection that never dialled
    conns.append(await _connect(p))
    for r, w in conns:
        w.write(b"x" * 100_000)
    t0 = time.monotonic()
    await asyncio.wait_for(p.stop(), T)
    assert time.monotonic() - t0 < 2.0
    for r, w in conns:
        with pytest.raises((asyncio.IncompleteReadError, ConnectionError)):
            await asyncio.wait_for(r.readexactly(1), T)  # closed: EOF or reset
        w.close()
    with pytest.raises(OSError):
        await asyncio.wait_for(asyncio.open_connection("127.0.0.1", p.port), T)


# -- schedules ----------------------------------------------------------------

def test_schedule_is_reproducible_and_well_formed():
    a = FaultSchedule.random(seed=7, duration_s=120)
    b = FaultSchedule.random(seed=7, duration_s=120)
    c = FaultSchedule.random(seed=8, duration_s=120)
    assert a.steps == b.steps and a.describe() == b.describe()
    assert a.steps != c.steps
    assert len(a.steps) > 10
    end = 0.0
    for s in a.steps:
        assert s.at_s > end  # never overlapping
        assert s.kind in ("drop", "reset", "blackhole", "refuse", "delay", "throttle")
        assert (s.hold_s == 0) == (s.kind in ("drop", "reset"))
        end = s.at_s + s.hold_s
    assert end <= 120
    assert {s.kind for s in a.steps} == {"drop", "reset", "blackhole", "refuse", "delay", "throttle"}
    only = FaultSchedule.random(seed=7, duration_s=60, kinds=("drop",))
    assert {s.kind for s in only.steps} == {"drop"}
    at, kind, hold = a.steps[0]  # plain (at_s, kind, hold_s) tuples
    with pytest.raises(ValueError):
        FaultSchedule.random(seed=1, duration_s=10, kinds=("explode",))


def test_describe_is_readable():
    s = FaultSchedule([(0.5, "drop", 0), (1.0, "delay", 0.25), (2.0, "throttle", 1.0)], 3,
                      delay_s=0.2, throttle_bps=500)
    assert s.describe() == ["t=0.500s drop", "t=1.000s delay 0.2s for 0.250s, then heal",
                             "t=2.000s throttle 500 B/s for 1.000s, then heal"]


async def test_running_a_schedule_applies_its_steps(proxy):
    sched = FaultSchedule([Step(0.2, "blackhole", 0.3), Step(0.7, "drop", 0), Step(1.0, "delay", 0.3),
                           Step(1.5, "refuse", 0.2), Step(1.8, "reset", 0)], duration_s=2.0,
                          delay_s=0.05)
    r, w = await _connect(proxy)
    events = []
    t0 = time.monotonic()
    applied = await asyncio.wait_for(
        sched.run(proxy, clock_scale=0.5, on_event=lambda t, text: events.append(text)), T)
    elapsed = time.monotonic() - t0
    assert 0.95 <= elapsed < 2.0  # 2 s of schedule at clock_scale 0.5
    assert [text for _, text in applied] == events
    assert [e.split()[0] for e in events] == ["blackhole", "heal", "drop", "delay", "heal",
                                              "refuse", "heal", "reset"]
    assert events[2] == "drop (1 connections closed)"
    f = proxy.stats["faults"]
    assert (f["blackhole"], f["drop"], f["delay"], f["refuse"], f["reset"], f["heal"]) == (1, 1, 1, 1, 1, 3)
    assert proxy.modes == {"blackhole": False, "refuse": False, "delay": 0.0, "throttle": None}
    assert await asyncio.wait_for(r.read(100), T) == b""  # dropped at t=0.7
    w.close()


async def test_random_schedule_runs_fast_and_heals(proxy):
    sched = FaultSchedule.random(seed=3, duration_s=2.0, mean_gap_s=0.3)
    assert sched.steps
    applied = await asyncio.wait_for(sched.run(proxy, clock_scale=0.5), T)
    kinds = [text.split()[0] for _, text in applied]
    assert [k for k in kinds if k != "heal"] == [s.kind for s in sched.steps]
    assert sum(proxy.stats["faults"][k] for k in ("drop", "reset", "blackhole", "refuse",
                                                   "delay", "throttle")) == len(sched.steps)
    assert not any(proxy.modes[k] for k in ("blackhole", "refuse", "delay", "throttle"))
    r, w = await _connect(proxy)  # healed: works again
    assert await _roundtrip(r, w, b"ok") == b"ok"
    w.close()


async def test_cancelled_schedule_heals(proxy):
    sched = FaultSchedule([Step(0.0, "blackhole", 10.0)], duration_s=20)
    task = asyncio.ensure_future(sched.run(proxy))
    await _until(lambda: proxy.modes["blackhole"])
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, T)
    assert not proxy.modes["blackhole"]


# -- manual mode and CLI ------------------------------------------------------

def test_parse_command():
    assert parse_command("drop") == Command("drop")
    assert parse_command("  RESET \n") == ("reset", None)
    assert parse_command("blackhole") == ("blackhole", None)
    assert parse_command("delay 0.5") == ("delay", 0.5)
    assert parse_command("delay 0") == ("delay", 0.0)
    assert parse_command("throttle 1000") == ("throttle", 1000.0)
    assert parse_command("heal") == ("heal", None)
    assert parse_command("stats") == ("stats", None)
    assert parse_command("quit") == parse_command("exit") == ("quit", None)
    assert parse_command("") is None and parse_command("   \n") is None
    for bad, words in [("explode", "unknown command"), ("delay", "needs one argument"),
                       ("delay soon", "not a number"), ("delay -1", ">= 0"),
                       ("delay nan", ">= 0"), ("throttle 0", "> 0"), ("throttle", "bytes/s"),
                       ("drop now", "takes no argument"), ("delay 1 2", "needs one argument")]:
        with pytest.raises(ValueError, match=words):
            parse_command(bad)


async def test_manual_session_drives_the_proxy(proxy):
    r, w = await _connect(proxy)
    out = io.StringIO()
    script = io.StringIO("blackhole\nfly away\ndelay x\nstats\nheal\nthrottle 5000\ndrop\nquit\nreset\n")
    await asyncio.wait_for(run_manual(proxy, stream=script, out=out), T)
    text = out.getvalue()
    assert "error: unknown command 'fly'" in text and "not a number" in text
    assert "modes: blackhole" in text and "dropped 1 connections" in text
    assert proxy.stats["faults"]["reset"] == 0  # after quit: not run
    assert proxy.modes["throttle"] == 5000
    assert await asyncio.wait_for(r.read(100), T) == b""
    assert "delay" in apply_command(proxy, Command("delay", 0.1)) and proxy.modes["delay"] == 0.1
    w.close()


async def test_manual_session_ends_at_eof(proxy):
    out = io.StringIO()
    await asyncio.wait_for(run_manual(proxy, stream=io.StringIO("refuse\n"), out=out), T)
    assert "refusing new connections" in out.getvalue() and "stdin closed" in out.getvalue()


def test_address_parsing():
    assert parse_hostport("127.0.0.1:8780") == ("127.0.0.1", 8780)
    assert parse_hostport("[::1]:9") == ("::1", 9)
    assert parse_hostport("localhost", default_port=0) == ("localhost", 0)
    for bad in ("127.0.0.1", "host:port", ":80", "h:70000"):
        with pytest.raises(ValueError):
            parse_hostport(bad)
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.2") and not is_loopback("example.com")
    assert parse_kinds("drop, reset") == ("drop", "reset")
    with pytest.raises(ValueError):
        parse_kinds("drop,boom")


def _args(*argv):
    p = argparse.ArgumentParser(prog="doorlink")
    sub = p.add_subparsers(dest="cmd", required=True)
    assert add_parser(sub).prog.endswith("chaos")
    return p.parse_args(["chaos", *argv])


def test_cli_refuses_nonlocal_listen_and_bad_input(capsys):
    assert main(_args("--target", "127.0.0.1:1", "--listen", "0.0.0.0:0")) == 2
    assert "--allow-nonlocal" in capsys.readouterr().err
    assert main(_args("--target", "127.0.0.1")) == 2
    assert "needs a port" in capsys.readouterr().err
    assert main(_args("--target", "127.0.0.1:1", "--kinds", "drop,nuke")) == 2
    assert "--kinds" in capsys.readouterr().err
    a = _args("--target", "h:1", "--listen", "0.0.0.0:0", "--allow-nonlocal", "--seed", "4",
              "--duration", "3", "--mean-gap", "1", "--kinds", "drop", "--manual")
    assert (a.seed, a.duration, a.mean_gap, a.kinds, a.manual, a.allow_nonlocal) == (
        4, 3.0, 1.0, "drop", True, True)


def _run_cli(argv, stdin=None):
    code = ("import argparse, sys; from host_tools import chaos; p = argparse.ArgumentParser(); "
            "chaos.add_parser(p.add_subparsers(dest='cmd')); "
            "sys.exit(chaos.main(p.parse_args(sys.argv[1:])))")
    return subprocess.run([sys.executable, "-c", code, "chaos", *argv], input=stdin,
                          capture_output=True, text=True, timeout=30)


async def test_cli_schedule_runs_for_its_duration(echo):
    res = await asyncio.to_thread(_run_cli, ["--target", "127.0.0.1:%d" % echo, "--seed", "5",
                                             "--duration", "1.5", "--mean-gap", "0.3"])
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0].startswith("listening on 127.0.0.1:") and lines[0].endswith(":%d" % echo)
    plan = FaultSchedule.random(5, 1.5, 0.3).describe()
    assert ["  " + x for x in plan] == lines[2:2 + len(plan)]
    applied = [x for x in lines if x.startswith("[")]
    assert len([x for x in applied if "heal" not in x]) == len(plan)
    assert lines[-1].startswith("connections:")


async def test_cli_manual(echo):
    res = await asyncio.to_thread(_run_cli, ["--target", "127.0.0.1:%d" % echo, "--manual"],
                                  "delay 0.5\nbogus\nstats\nquit\n")
    assert res.returncode == 0, res.stderr
    assert "delay 0.5s on every chunk" in res.stdout
    assert "error: unknown command 'bogus'" in res.stdout
    assert "modes: delay 0.5s" in res.stdout
