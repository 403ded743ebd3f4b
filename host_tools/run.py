"""`doorlink run`: the agent on this host - a Raspberry Pi's own pins, or a
desktop with the board's peripherals emulated - until Ctrl-C or SIGTERM.

    doorlink run --board rpi4-door|emulated|FILE --site SITE.json [--runtime R] [--server URL] [--control URL]
"""

from __future__ import annotations

import argparse
import asyncio

from agent.config import load_board, load_site
from agent.errors import ConfigError
from host_tools.cli_common import CliError, Parents
from host_tools.paths import board_path
from host_tools.runner import start_board
from host_tools.signals import stop_event


def add_parser(sub: argparse._SubParsersAction, parents: Parents) -> argparse.ArgumentParser:
    p = sub.add_parser("run", parents=[parents.runtime, parents.log_level],
                       help="run the agent on this host (a Pi, or a desktop with an emulated board)")
    p.add_argument("--board", required=True, help="board file, or a name in boards/ (emulated, rpi4-door, ...)")
    p.add_argument("--site", required=True, help="site file: server URL, device id, token")
    p.add_argument("--server", help="override the site file's server URL")
    p.add_argument("--control", help="open the management channel to this ws:// or wss:// control server "
                                     "(replaces the site file's control URL)")
    p.add_argument("--journal", help="override the board's journal folder")
    p.set_defaults(handler=run)
    return p


FIX = "fix the file (see the README's configuration reference)"
FLAGS = {"server": "server", "control.url": "control"}   # site fields a flag can give


def _fix(e: ConfigError, args: argparse.Namespace) -> str:
    """What to fix: the flag, when the wrong value came from one."""
    flag = FLAGS.get(e.field)
    if flag and getattr(args, flag):
        return f"fix --{flag} (see the README's configuration reference)"
    return FIX


def run(args: argparse.Namespace) -> int:
    board_file = board_path(args.board)
    try:
        board = load_board(str(board_file))
        # Checked here too, so a broken site file is one error line before
        # anything starts; the agent checks it again on its own runtime.
        load_site(args.site, args.server, args.control)
    except ConfigError as e:
        raise CliError(f"config error: {e}", _fix(e, args)) from None
    if args.runtime and args.runtime not in board["runtimes"]:
        raise CliError(f"board {board['name']} runs {', '.join(board['runtimes'])}, not {args.runtime}",
                       f"drop --runtime, or pass --runtime {board['runtimes'][0]}")

    async def go() -> int:
        stop = stop_event()
        try:
            session = await start_board(board_file, args.site, runtime=args.runtime, server=args.server,
                                        control=args.control, log_level=args.log_level, journal=args.journal,
                                        on_line=lambda line: print(line, flush=True))
        except ConfigError as e:
            raise CliError(f"config error: {e}", _fix(e, args)) from None
        ended = asyncio.create_task(session.wait())
        stopper = asyncio.create_task(stop.wait())
        await asyncio.wait([ended, stopper], return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        rc = await session.stop()
        return 0 if stop.is_set() else rc

    return asyncio.run(go())
