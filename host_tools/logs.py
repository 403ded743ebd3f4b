"""`doorlink logs`: follow a device's log lines.

`--port PORT`: a board's console (what its agent prints) over its serial
port, across resets, without ever sending it a byte: following must not
stop the agent. `--device ID`: a device anywhere, through the bench, which
relays the `log_tail` command to it (host_tools/remote_follow.py).

    doorlink logs --port /dev/ttyUSB0|auto [--baud 115200] [--timestamps] [--for SECONDS]
    doorlink logs --device ID [--server URL] [--token T] [--interval 1.0] [--timestamps] [--for SECONDS]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

from host_tools.board_link import choose_port
from host_tools.cli_common import CliError, Parents, add_token, positive
from host_tools.console_follow import ConsoleFollower

MIN_INTERVAL_S = 0.1


def add_parser(sub: argparse._SubParsersAction, parents: Parents) -> argparse.ArgumentParser:
    p = sub.add_parser("logs", parents=[parents.server],
                       help="follow a device's log lines: a board's console on its serial port (reconnects "
                            "when it resets), or any device through the bench (--device)")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--port", help="the board's serial port, e.g. /dev/ttyUSB0, or auto")
    where.add_argument("--device", help="a device's id: its lines come through the bench (--server)")
    p.add_argument("--baud", type=_baud, default=115200, help="line speed, with --port (default %(default)s)")
    add_token(p, "with --device, ")
    p.add_argument("--interval", type=_interval, default=1.0,
                   help="seconds between asks, with --device (default %(default)s)")
    p.add_argument("--timestamps", action="store_true", help="prefix each line with the time it arrived")
    p.add_argument("--for", dest="duration", type=positive, metavar="SECONDS",
                   help="stop after this long (default: until Ctrl-C)")
    p.set_defaults(handler=run)
    return p


def _baud(text: str) -> int:
    if not text.isdigit() or not 50 <= int(text) <= 4_000_000:
        raise argparse.ArgumentTypeError(f"must be a line speed from 50 to 4000000, got {text!r}")
    return int(text)


def _interval(text: str) -> float:
    value = positive(text)
    if value < MIN_INTERVAL_S:
        raise argparse.ArgumentTypeError(f"must be at least {MIN_INTERVAL_S} s (each ask is a command), got {text}")
    return value


def _print(line: str) -> None:
    print(line, flush=True)


def run(args: argparse.Namespace) -> int:
    deadline = time.monotonic() + args.duration if args.duration else None
    if args.device is not None:
        return _remote(args, deadline)
    port = choose_port(args.port, input if sys.stdin.isatty() else None, sys.stderr)
    follower = ConsoleFollower(port, args.baud, _print, timestamps=args.timestamps)
    follower.open()
    print(f"-- following {port} ({args.baud} baud); Ctrl-C ends --", file=sys.stderr, flush=True)
    try:
        follower.run(deadline)
    except KeyboardInterrupt:
        pass    # how a follow normally ends
    return 0


def _remote(args: argparse.Namespace, deadline: float | None) -> int:
    # Loaded here: --port must work where the bench's client (aiohttp) is not installed.
    try:
        from host_tools.remote_follow import RemoteFollower
    except ModuleNotFoundError as e:
        if e.name and e.name.split(".")[0] in ("agent", "host_tools"):
            raise   # our own code is broken: say so, loudly
        raise CliError(f"`doorlink logs --device` needs {e.name}, which is not installed here",
                       "pip install 'doorlink[host]'") from None
    follower = RemoteFollower(args.server, args.device, _print, token=args.token, interval=args.interval,
                              timestamps=args.timestamps)
    print(f"-- following {args.device} through {args.server}; Ctrl-C ends --", file=sys.stderr, flush=True)
    try:
        asyncio.run(follower.run(deadline))
    except KeyboardInterrupt:
        pass    # how a follow normally ends
    return 0
