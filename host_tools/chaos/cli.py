"""`doorlink chaos`: put the fault proxy between an agent and its cloud from a
shell. Every flag is checked before anything listens, so a typo is an error
that says what to write instead, not a proxy quietly doing something else;
and it refuses to listen beyond loopback unless asked, being a test tool.
"""

from __future__ import annotations

import argparse
import asyncio

from agent.codecs.url import split_hostport
from host_tools.chaos import faults
from host_tools.chaos.console import format_stats, run_manual
from host_tools.chaos.proxy import FaultProxy
from host_tools.chaos.schedule import FaultSchedule, scheduled_args
from host_tools.cli_common import CliError, Parents, is_loopback, positive
from host_tools.signals import stop_event

SCHEDULE_S = 60.0  # how long a schedule runs without --duration
STOP_WAIT_S = 2.0  # for the schedule or console to wind down once stopped


def address(flag: str, text: str, default_port: int | None = None) -> tuple[str, int]:
    """The (host, port) a HOST:PORT flag names; CliError saying how to write it otherwise."""
    try:
        return split_hostport(text, default_port)
    except ValueError as e:
        example = "127.0.0.1:8780" if default_port is None else "127.0.0.1:0"
        raise CliError(f"{flag}: {e}", f"write HOST:PORT or [IPv6]:PORT, e.g. {flag} {example}") from None


def _show(host: str, port: int | None) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
               parents: Parents) -> argparse.ArgumentParser:
    # chaos takes none of the shared flags (db, runtime, log level, server): `parents` goes unused.
    p = subparsers.add_parser(
        "chaos", help=f"TCP fault proxy: {', '.join(faults.KINDS)}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="A TCP proxy that injects network faults between the agent and the cloud.\n"
                    "Point the agent at the listening address. Without --manual it runs a seeded\n"
                    "random schedule of faults; with --manual it reads commands on stdin.",
        epilog="\n".join(["fault kinds (--kinds; an argument is given in manual mode, or by the",
                          "flag of the same name for a schedule):", *faults.help_lines()]))
    p.add_argument("--target", required=True, metavar="HOST:PORT", help="where to forward to")
    p.add_argument("--listen", default="127.0.0.1:0", metavar="HOST:PORT",
                   help="where to listen (default %(default)s: any free port on loopback)")
    p.add_argument("--allow-nonlocal", action="store_true",
                   help="allow --listen on a non-loopback address")
    p.add_argument("--seed", type=int, default=0, help="schedule seed (default %(default)s)")
    p.add_argument("--duration", type=positive,
                   help=f"seconds to run (default {SCHEDULE_S:g} for a schedule; until quit with --manual)")
    p.add_argument("--mean-gap", type=positive, default=2.0,
                   help="mean seconds between faults (default %(default)s)")
    p.add_argument("--kinds", default=",".join(faults.KINDS),
                   help="comma-separated fault kinds (default %(default)s)")
    for kind in faults.KINDS.values():
        if kind.arg is not None:
            p.add_argument(f"--{kind.name}", type=float, default=kind.default, metavar=kind.arg.metavar,
                           help=f"{kind.arg.what} for scheduled {kind.name} faults (default {kind.default:g})")
    p.add_argument("--manual", action="store_true", help="read commands from stdin instead")
    p.set_defaults(handler=run)
    return p


def parse_kinds(text: str) -> tuple[str, ...]:
    """--kinds: comma-separated names from the fault table."""
    try:
        return faults.kinds(k.strip().lower() for k in text.split(",") if k.strip())
    except ValueError as e:
        raise CliError(str(e), f"--kinds takes a comma-separated list, e.g. --kinds {','.join(faults.KINDS)}") \
            from None


def _fault_args(args: argparse.Namespace) -> dict[str, float]:
    """The argument each scheduled kind that takes one gets, from the flag named after it."""
    given = {k.name: getattr(args, k.name) for k in faults.KINDS.values() if k.arg is not None}
    try:
        return scheduled_args(given)
    except ValueError as e:
        flags = ", ".join(f"--{k.name} {k.arg.metavar} ({k.arg.rule})"
                          for k in faults.KINDS.values() if k.arg is not None)
        raise CliError(str(e), f"set it with {flags}") from None


def run(args: argparse.Namespace) -> int:
    target = address("--target", args.target)
    listen = address("--listen", args.listen, default_port=0)
    kinds = parse_kinds(args.kinds)
    fault_args = _fault_args(args)
    if not is_loopback(listen[0]) and not args.allow_nonlocal:
        raise CliError(f"--listen {listen[0]} is not a loopback address; this is a test tool",
                       "pass --allow-nonlocal if you really mean it")
    proxy = FaultProxy(target[0], target[1], listen[0], listen[1], seed=args.seed)
    schedule = None
    if not args.manual:
        duration = args.duration if args.duration is not None else SCHEDULE_S
        schedule = FaultSchedule.random(args.seed, duration, args.mean_gap, kinds, fault_args)
    try:
        return asyncio.run(_serve(proxy, schedule, args.duration))
    except KeyboardInterrupt:
        return 0


def _say(line: str) -> None:
    print(line, flush=True)


async def _serve(proxy: FaultProxy, schedule: FaultSchedule | None, limit: float | None) -> int:
    """Run the schedule, or the console for at most limit seconds; stop on Ctrl-C or SIGTERM."""
    try:
        await proxy.start()
    except OSError as e:
        raise CliError(f"cannot listen on {_show(proxy.listen_host, proxy.listen_port)} ({e.strerror or e})",
                       "choose a free address, or port 0 for any free port: --listen 127.0.0.1:0",
                       code=1) from None
    _say(f"listening on {_show(proxy.listen_host, proxy.port)} -> {_show(proxy.target_host, proxy.target_port)}")
    stop = stop_event()
    try:
        if schedule is None:
            work = run_manual(proxy, stop=stop)
        else:
            _say(f"plan (seed {schedule.seed}, {schedule.duration_s:g}s, {len(schedule.steps)} faults):")
            for line in schedule.describe():
                _say(f"  {line}")
            work = schedule.run(proxy, on_event=lambda t, text: _say(f"[{t:8.3f}s] {text}"))
            limit = None  # the schedule ends itself after its duration
        task = asyncio.ensure_future(work)
        stopper = asyncio.ensure_future(stop.wait())
        await asyncio.wait([task, stopper], timeout=limit, return_when=asyncio.FIRST_COMPLETED)
        for t in (task, stopper):
            t.cancel()
        await asyncio.wait([task], timeout=STOP_WAIT_S)
        if task.done() and not task.cancelled() and task.exception() is not None:
            raise task.exception()
    finally:
        await proxy.stop()
    _say(format_stats(proxy))
    return 0
