# The TCP fault proxy (host_tools/chaos/), driven against a real echo server
# on 127.0.0.1. Every wait is bounded.
from __future__ import annotations

import argparse
import asyncio
import io
import socket
import struct
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

import host_tools.chaos as chaos
from host_tools.chaos import KINDS, Command, FaultProxy, FaultSchedule, Step, apply_command, parse_command, run_manual
from host_tools.chaos.cli import add_parser, address, is_loopback, parse_kinds, run
from host_tools.chaos.console import HELP
from host_tools.cli_common import CliError, parents

T = 5  # bound on every wait


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


@pytest.fixture
async def echo() -> AsyncIterator[int]:
    server = await asyncio.start_server(_echo, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()
    await asyncio.wait_for(server.wait_closed(), T)


@pytest.fixture
async def proxy(echo: int) -> AsyncIterator[FaultProxy]:
    p = await FaultProxy("127.0.0.1", echo).start()
    yield p
    await asyncio.wait_for(p.stop(), T)


async def _connect(proxy: FaultProxy) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.wait_for(asyncio.open_connection("127.0.0.1", proxy.port), T)


async def _roundtrip(r: asyncio.StreamReader, w: asyncio.StreamWriter, data: bytes) -> bytes:
    w.write(data)
    await asyncio.wait_for(w.drain(), T)
    return await asyncio.wait_for(r.readexactly(len(data)), T)


async def _until(cond: Callable[[], object], timeout: float = T) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def test_data_passes_both_ways(proxy: FaultProxy) -> None:
    r, w = await _connect(proxy)
    assert await _roundtrip(r, w, b"hello") == b"hello"
    big = bytes(range(256)) * 1000
    assert await _roundtrip(r, w, big) == big
    assert proxy.stats["accepted"] == 1 and proxy.connections == 1
    assert proxy.stats["bytes_to_target"] == proxy.stats["bytes_to_client"] == 5 + len(big)
    w.close()
    # the client's FIN is forwarded, the echo server closes, the pair goes away
    await _until(lambda: proxy.connections == 0)


async def test_half_close_is_forwarded(proxy: FaultProxy) -> None:
    r, w = await _connect(proxy)
    w.write(b"last words")
    w.write_eof()
    assert await asyncio.wait_for(r.read(), T) == b"last words"  # then EOF
    w.close()


async def test_drop_gives_the_client_eof(proxy: FaultProxy) -> None:
    r, w = await _connect(proxy)
    assert await _roundtrip(r, w, b"x") == b"x"
    assert proxy.drop() == 1
    assert await asyncio.wait_for(r.read(100), T) == b""
    assert proxy.stats["faults"]["drop"] == 1
    await _until(lambda: proxy.connections == 0)
    w.close()


async def test_drop_while_the_client_is_sending_is_still_a_fin(proxy: FaultProxy) -> None:
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


async def test_drop_of_a_connection_whose_peer_already_reset_it(proxy: FaultProxy) -> None:
    # The client's RST reaches the kernel before the event loop has heard of
    # it: the FIN drop() sends then fails (ENOTCONN). Found by
    # tests/e2e/test_faults.py, where it ended a whole chaos run.
    client = socket.create_connection(("127.0.0.1", proxy.port), timeout=T)
    await _until(lambda: proxy.connections == 1)
    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.close()            # closed with SO_LINGER 0: an RST, now
    _hold_the_loop(0.1)       # the proxy's transport has not seen it yet
    assert proxy.drop() == 1  # no OSError
    await _until(lambda: proxy.connections == 0)


def _hold_the_loop(seconds: float) -> None:
    """Block the event loop, as a busy one would, while the kernel moves on."""
    time.sleep(seconds)


async def test_reset_gives_the_client_connection_reset(proxy: FaultProxy) -> None:
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


async def test_blackhole_holds_then_heal_delivers_everything(proxy: FaultProxy) -> None:
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


async def test_blackhole_holds_more_than_the_buffers_without_loss(proxy: FaultProxy) -> None:
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


async def test_refuse_closes_new_connections_but_not_existing_ones(proxy: FaultProxy) -> None:
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


async def test_delay_adds_latency_and_keeps_order(proxy: FaultProxy) -> None:
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


async def test_throttle_limits_bandwidth(proxy: FaultProxy) -> None:
    r, w = await _connect(proxy)
    proxy.throttle(10_000)
    t0 = time.monotonic()
    data = b"z" * 20_000
    assert await _roundtrip(r, w, data) == data
    assert time.monotonic() - t0 >= 1.5
    w.close()


async def test_target_down_resets_the_client() -> None:
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


async def test_stop_with_live_connections_is_prompt(echo: int) -> None:
    p = await FaultProxy("127.0.0.1", echo).start()
    conns = [await _connect(p) for _ in range(3)]
    for r, w in conns:
        assert await _roundtrip(r, w, b"hi") == b"hi"
    p.blackhole()  # pumps parked, plus a held connection that never dialled
    conns.append(await _connect(p))
    for _, w in conns:
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

def test_schedule_is_reproducible_and_well_formed() -> None:
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


def test_describe_is_readable() -> None:
    s = FaultSchedule([(0.5, "drop", 0), (1.0, "delay", 0.25), (2.0, "throttle", 1.0)], 3,
                      args={"delay": 0.2, "throttle": 500})
    assert s.describe() == ["t=0.500s drop", "t=1.000s delay 0.2s for 0.250s, then heal",
                             "t=2.000s throttle 500 B/s for 1.000s, then heal"]


async def test_running_a_schedule_applies_its_steps(proxy: FaultProxy) -> None:
    sched = FaultSchedule([Step(0.2, "blackhole", 0.3), Step(0.7, "drop", 0), Step(1.0, "delay", 0.3),
                           Step(1.5, "refuse", 0.2), Step(1.8, "reset", 0)], duration_s=2.0,
                          args={"delay": 0.05})
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


async def test_random_schedule_runs_fast_and_heals(proxy: FaultProxy) -> None:
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


async def test_cancelled_schedule_heals(proxy: FaultProxy) -> None:
    sched = FaultSchedule([Step(0.0, "blackhole", 10.0)], duration_s=20)
    task = asyncio.ensure_future(sched.run(proxy))
    await _until(lambda: proxy.modes["blackhole"])
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, T)
    assert not proxy.modes["blackhole"]


# -- manual mode and CLI ------------------------------------------------------

def test_parse_command() -> None:
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


async def test_manual_session_drives_the_proxy(proxy: FaultProxy) -> None:
    r, w = await _connect(proxy)
    out = io.StringIO()
    script = io.StringIO("blackhole\nfly away\ndelay x\nstats\nheal\nthrottle 5000\ndrop\nquit\nreset\n")
    await asyncio.wait_for(run_manual(proxy, stream=script, out=out), T)
    text = out.getvalue()
    assert "error: unknown command 'fly'" in text and "not a number" in text
    assert "modes: blackhole" in text and "drop (1 connections closed)" in text
    assert proxy.stats["faults"]["reset"] == 0  # after quit: not run
    assert proxy.modes["throttle"] == 5000
    assert await asyncio.wait_for(r.read(100), T) == b""
    assert "delay" in apply_command(proxy, Command("delay", 0.1)) and proxy.modes["delay"] == 0.1
    w.close()


async def test_manual_session_ends_at_eof(proxy: FaultProxy) -> None:
    out = io.StringIO()
    await asyncio.wait_for(run_manual(proxy, stream=io.StringIO("refuse\n"), out=out), T)
    assert "refuse (new connections are reset)" in out.getvalue() and "stdin closed" in out.getvalue()


def test_address_parsing() -> None:
    assert address("--target", "127.0.0.1:8780") == ("127.0.0.1", 8780)
    assert address("--target", "[::1]:9") == ("::1", 9)
    assert address("--listen", "localhost", default_port=0) == ("localhost", 0)
    for bad in ("127.0.0.1", "host:port", ":80", "h:70000"):
        with pytest.raises(CliError, match="--target"):
            address("--target", bad)
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.2") and not is_loopback("example.com")
    assert parse_kinds("drop, reset") == ("drop", "reset")
    with pytest.raises(CliError):
        parse_kinds("drop,boom")


def _args(*argv: str) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="doorlink")
    sub = p.add_subparsers(dest="cmd", required=True)
    assert add_parser(sub, parents()).prog.endswith("chaos")
    return p.parse_args(["chaos", *argv])


def test_cli_refuses_nonlocal_listen_and_bad_input() -> None:
    with pytest.raises(CliError, match="--allow-nonlocal"):
        run(_args("--target", "127.0.0.1:1", "--listen", "0.0.0.0:0"))
    with pytest.raises(CliError, match="needs a port"):
        run(_args("--target", "127.0.0.1"))
    with pytest.raises(CliError, match="--kinds"):
        run(_args("--target", "127.0.0.1:1", "--kinds", "drop,nuke"))
    a = _args("--target", "h:1", "--listen", "0.0.0.0:0", "--allow-nonlocal", "--seed", "4",
              "--duration", "3", "--mean-gap", "1", "--kinds", "drop", "--manual")
    assert (a.seed, a.duration, a.mean_gap, a.kinds, a.manual, a.allow_nonlocal) == (
        4, 3.0, 1.0, "drop", True, True)
    assert a.handler is run


def test_cli_refuses_numbers_out_of_range(capsys: pytest.CaptureFixture[str]) -> None:
    for flag in ("--duration", "--mean-gap"):
        for bad in ("0", "-1", "nan", "inf"):
            with pytest.raises(SystemExit) as e:
                _args("--target", "127.0.0.1:1", flag, bad)
            assert e.value.code == 2 and "must be a number > 0" in capsys.readouterr().err


def test_cli_reports_a_port_it_cannot_listen_on() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        busy = s.getsockname()[1]
        with pytest.raises(CliError, match=f"cannot listen on 127.0.0.1:{busy}") as e:
            run(_args("--target", "127.0.0.1:1", "--listen", f"127.0.0.1:{busy}", "--duration", "1"))
    assert e.value.code == 1  # asked rightly, failed: as before the split


def test_doorlink_prints_a_chaos_error_once(capsys: pytest.CaptureFixture[str]) -> None:
    # The command raises; `doorlink` itself prints it, once, and exits 2.
    from host_tools import cli as doorlink
    with pytest.raises(SystemExit) as e:
        doorlink.main(["chaos", "--target", "127.0.0.1:1", "--listen", "0.0.0.0:0"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --listen 0.0.0.0 is not a loopback address") and err.count("error:") == 1
    assert "--allow-nonlocal" in err


# -- the fault table: one set of kinds and rules for console, schedule and CLI ----

def test_every_kind_is_accepted_by_console_schedule_and_cli(proxy: FaultProxy) -> None:
    cli_help = add_parser(argparse.ArgumentParser().add_subparsers(), parents()).format_help()
    for name, kind in KINDS.items():
        typed = name if kind.arg is None else f"{name} {kind.default:g}"
        assert parse_command(typed.upper()) == Command(name, kind.default)
        assert apply_command(proxy, parse_command(typed)).split()[0] == name
        assert proxy.stats["faults"][name] == 1
        proxy.heal()
        hold = 1.0 if kind.mode else 0.0
        sched = FaultSchedule([Step(0.5, name, hold)], 2)
        assert sched.describe()[0].split()[1] == name
        assert sched.apply(proxy, sched.steps[0]).split()[0] == name
        proxy.heal()
        assert {s.kind for s in FaultSchedule.random(seed=1, duration_s=20, kinds=(name,)).steps} == {name}
        assert all((s.hold_s > 0) == kind.mode for s in FaultSchedule.random(1, 20, kinds=(name,)).steps)
        assert parse_kinds(name) == (name,)
        assert kind.help in HELP and kind.help in cli_help
        if kind.arg is not None:
            assert "--" + name in cli_help
            assert getattr(_args("--target", "h:1", "--" + name, "7"), name) == 7.0
    assert parse_kinds(",".join(KINDS)) == tuple(KINDS)
    assert tuple(KINDS) == ("drop", "reset", "blackhole", "refuse", "delay", "throttle")  # seeded plans depend on it


def _refusal(call: Callable[..., object], *args: Any, **kwargs: Any) -> str | None:
    """The message call(*args, **kwargs) refuses with; None if it accepts."""
    try:
        call(*args, **kwargs)
    except CliError as e:
        return e.problem
    except ValueError as e:
        return str(e)
    return None


def test_a_bad_argument_gets_the_same_message_everywhere() -> None:
    proxy = FaultProxy("127.0.0.1", 1)  # not started: only its argument checks are used
    refused = set()
    for name, kind in KINDS.items():
        if kind.arg is None:
            continue
        for text in ("0", "-1", "0.5", "nan", "inf", "1e400"):
            seen = {
                "console": _refusal(parse_command, f"{name} {text}"),
                "schedule": _refusal(FaultSchedule, [], 1, args={name: float(text)}),
                "cli": _refusal(run, _args("--target", "127.0.0.1:1", "--" + name, text, "--listen", "0.0.0.0:0")),
                "proxy": _refusal(getattr(proxy, name), float(text)),
            }
            if seen["console"] is None:  # accepted: everything else gets as far as --listen
                assert seen["schedule"] is None and seen["proxy"] is None, (name, text, seen)
                assert "not a loopback address" in seen["cli"]
            else:
                refused.add((name, text))
                assert len(set(seen.values())) == 1, (name, text, seen)
                assert seen["console"].startswith(name + ": must be a number")
    assert ("delay", "0") not in refused and ("delay", "-1") in refused and ("delay", "nan") in refused
    assert ("throttle", "0") in refused and ("throttle", "inf") in refused and ("throttle", "0.5") not in refused
    with pytest.raises(ValueError, match="takes no argument"):
        chaos.faults.apply(proxy, "drop", 1.0)


def test_a_bad_kind_gets_the_same_message_in_schedule_and_cli() -> None:
    with pytest.raises(ValueError) as sched:
        FaultSchedule.random(seed=1, duration_s=10, kinds=("nuke",))
    with pytest.raises(ValueError) as step:
        FaultSchedule([Step(0.0, "nuke", 0.0)], 1)
    with pytest.raises(CliError) as flag:
        parse_kinds("drop,nuke")
    assert str(sched.value) == str(step.value) == flag.value.problem
    assert "'nuke'" in flag.value.problem and "drop, reset, blackhole" in flag.value.problem
    with pytest.raises(CliError, match="no fault kinds"):
        parse_kinds(" , ")


def _run_cli(argv: list[str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    code = ("import argparse, sys; from host_tools.chaos import cli; from host_tools.cli_common import parents; "
            "p = argparse.ArgumentParser(); cli.add_parser(p.add_subparsers(dest='cmd'), parents()); "
            "args = p.parse_args(sys.argv[1:]); sys.exit(args.handler(args))")
    return subprocess.run([sys.executable, "-c", code, "chaos", *argv], input=stdin,
                          capture_output=True, text=True, timeout=30)


async def test_cli_schedule_runs_for_its_duration(echo: int) -> None:
    res = await asyncio.to_thread(_run_cli, ["--target", f"127.0.0.1:{echo}", "--seed", "5",
                                             "--duration", "1.5", "--mean-gap", "0.3"])
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0].startswith("listening on 127.0.0.1:") and lines[0].endswith(f":{echo}")
    plan = FaultSchedule.random(5, 1.5, 0.3).describe()
    assert ["  " + x for x in plan] == lines[2:2 + len(plan)]
    applied = [x for x in lines if x.startswith("[")]
    assert len([x for x in applied if "heal" not in x]) == len(plan)
    assert lines[-1].startswith("connections:")


async def test_cli_manual(echo: int) -> None:
    res = await asyncio.to_thread(_run_cli, ["--target", f"127.0.0.1:{echo}", "--manual"],
                                  "delay 0.5\nbogus\nstats\nquit\n")
    assert res.returncode == 0, res.stderr
    assert "delay 0.5s on every chunk" in res.stdout
    assert "error: unknown command 'bogus'" in res.stdout
    assert "modes: delay 0.5s" in res.stdout
