"""`doorlink logs --port PORT`: follow a board's console (what its agent
prints) over its serial port, across resets, without ever sending it a
byte: following must not stop the agent.

    doorlink logs --port /dev/ttyUSB0|auto [--baud 115200] [--timestamps] [--for SECONDS]
"""

from __future__ import annotations

import argparse
import sys
import time

from host_tools.board_link import choose_port
from host_tools.cli_common import Parents, positive
from host_tools.console_follow import ConsoleFollower


def add_parser(sub: argparse._SubParsersAction, parents: Parents) -> argparse.ArgumentParser:
    p = sub.add_parser("logs", help="follow a board's console on its serial port (reconnects when it resets)")
    p.add_argument("--port", required=True, help="the board's serial port, e.g. /dev/ttyUSB0, or auto")
    p.add_argument("--baud", type=_baud, default=115200, help="line speed (default %(default)s)")
    p.add_argument("--timestamps", action="store_true", help="prefix each line with the time it arrived")
    p.add_argument("--for", dest="duration", type=positive, metavar="SECONDS",
                   help="stop after this long (default: until Ctrl-C)")
    p.set_defaults(handler=run)
    return p


def _baud(text: str) -> int:
    if not text.isdigit() or not 50 <= int(text) <= 4_000_000:
        raise argparse.ArgumentTypeError(f"must be a line speed from 50 to 4000000, got {text!r}")
    return int(text)


def _print(line: str) -> None:
    print(line, flush=True)


def run(args: argparse.Namespace) -> int:
    deadline = time.monotonic() + args.duration if args.duration else None
    port = choose_port(args.port, input if sys.stdin.isatty() else None, sys.stderr)
    follower = ConsoleFollower(port, args.baud, _print, timestamps=args.timestamps)
    follower.open()
    print(f"-- following {port} ({args.baud} baud); Ctrl-C ends --", file=sys.stderr, flush=True)
    try:
        follower.run(deadline)
    except KeyboardInterrupt:
        pass    # how a follow normally ends
    return 0
