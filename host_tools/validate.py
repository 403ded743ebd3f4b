"""`doorlink validate BOARD.json [SITE.json]`: is this board file safe to flash?

First the agent's own checks (agent.config: every field, type, range and
a pin used twice), exactly as the board will run them at start; then the
chip's pin rules (host_tools/pins.py), which need datasheets the agent
does not carry. Every line names the file and the field. Exit code 2 when
anything is refused, 0 when the file is fit (warnings are printed).
"""

from __future__ import annotations

import argparse

from agent.config import load_board, load_site
from agent.errors import ConfigError
from host_tools.cli_common import Parents
from host_tools.paths import board_path
from host_tools.pins import findings


def add_parser(sub: argparse._SubParsersAction, parents: Parents) -> argparse.ArgumentParser:
    p = sub.add_parser("validate", help="check a board file (and a site file) against the agent and the chip's pins")
    p.add_argument("board", help="board file, or a name in boards/ (esp32-devkitc-door, rpi4-door, ...)")
    p.add_argument("site", nargs="?", help="site file to check as well")
    p.set_defaults(handler=run)
    return p


def check(board_file: str, site_file: str | None = None) -> tuple[list[str], list[str]]:
    """(refusals, warnings), each a line "FILE: FIELD: what is wrong"."""
    try:
        board = load_board(board_file)
        if site_file:
            load_site(site_file)
    except ConfigError as e:
        return [f"{e.path}: {e.field}: {e.problem}"], []
    refused, warned = [], []
    for f in findings(board):
        (refused if f.refused else warned).append(f"{board_file}: {f.field}: {f.text}")
    return refused, warned


def run(args: argparse.Namespace) -> int:
    board_file = str(board_path(args.board))
    refused, warned = check(board_file, args.site)
    for line in refused:
        print("refused: " + line)
    for line in warned:
        print("warning: " + line)
    if refused:
        print(f"{board_file}: {len(refused)} refused, {len(warned)} warning(s): fix the fields named above")
        return 2
    print(f"{board_file}: valid" + (f" ({len(warned)} warning(s))" if warned else ""))
    return 0
