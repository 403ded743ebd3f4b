"""`doorlink emulate board`: a virtual ESP32 (host_tools/virtual_board.py)
behind a pty that mpremote, `doorlink flash` and a terminal drive.

    doorlink emulate board BOARD.json [--image FILE] [--heap-kb N] [--flash-kb N]
                                      [--link PATH] [--emulator-port N] [--detach]

It prints one JSON line - the pty, the image, the emulator's address, the
heap and flash sizes, the pid to stop it with - and runs until Ctrl-C or
SIGTERM. With --detach it runs in the background, in a session of its own,
and the command returns once the board is up (its log: the image's path
with .log).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from agent.config import load_board
from agent.errors import ConfigError
from host_tools.cli_common import CliError
from host_tools.paths import ROOT, board_path
from host_tools.signals import stop_event
from host_tools.virtual_board import MAX_FLASH_KB, MIN_FLASH_KB, VirtualBoard, default_image

DETACH_TIMEOUT_S = 30.0
MIN_HEAP_KB, MAX_HEAP_KB = 32, 65536


def add_parser(esub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    b = esub.add_parser("board", help="a virtual ESP32 (MicroPython, LittleFS flash) on a pty that mpremote drives")
    b.add_argument("board", help="board file, or a name in boards/ (virtual-esp32)")
    b.add_argument("--image", help="its flash, a LittleFS image; made if missing "
                   "(default build/virtual-board/<board name>.img)")
    b.add_argument("--heap-kb", type=int, help="MicroPython heap (default: the board file's heap_kb)")
    b.add_argument("--flash-kb", type=int, default=2048, help="size of a new image (default %(default)s)")
    b.add_argument("--link", help="a symlink to point at the pty, as /dev/ttyUSB0 names a USB adapter")
    b.add_argument("--emulator-port", type=int, help="the pin emulator's port (default: the board file's)")
    b.add_argument("--detach", action="store_true", help="run in the background; print the JSON once it is up")
    b.set_defaults(handler=run)
    return b


def _check(args: argparse.Namespace) -> Path:
    path = board_path(args.board)
    if not path.exists():
        raise CliError(f"no board file {path}", "give a board file, e.g. boards/virtual-esp32.json")
    if args.heap_kb is not None and not MIN_HEAP_KB <= args.heap_kb <= MAX_HEAP_KB:
        raise CliError(f"--heap-kb must be from {MIN_HEAP_KB} to {MAX_HEAP_KB}, got {args.heap_kb}",
                       "an ESP32 without PSRAM leaves about 100 KB to Python; the board file says its budget")
    if not MIN_FLASH_KB <= args.flash_kb <= MAX_FLASH_KB or args.flash_kb % 4:
        raise CliError(f"--flash-kb must be a multiple of 4 from {MIN_FLASH_KB} to {MAX_FLASH_KB}, "
                       f"got {args.flash_kb}", "an ESP32's file system partition is usually 2048")
    if args.link and os.path.lexists(args.link) and not os.path.islink(args.link):
        raise CliError(f"--link {args.link} exists and is not a symlink", "name a path that is free, or a symlink")
    return path


async def _serve(args: argparse.Namespace, path: Path) -> None:
    stop = stop_event()
    vb = VirtualBoard(path, args.image, heap_kb=args.heap_kb, flash_kb=args.flash_kb,
                      emulator_port=args.emulator_port, link=args.link)
    try:
        await vb.start()
        print(json.dumps(vb.info()), flush=True)
        await stop.wait()
    finally:
        await vb.stop()


def _detach(argv: list[str], log: Path) -> int:
    """Start this same command without --detach in a session of its own;
    return once it printed its JSON line (or say why it did not)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", "host_tools.cli", *argv], cwd=str(ROOT),
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err,
                                start_new_session=True)
    line = b""
    end = time.monotonic() + DETACH_TIMEOUT_S
    os.set_blocking(proc.stdout.fileno(), False)
    while not line.endswith(b"\n") and proc.poll() is None and time.monotonic() < end:
        chunk = proc.stdout.read()
        if chunk:
            line += chunk
        else:
            time.sleep(0.02)
    if not line.endswith(b"\n"):
        if proc.poll() is None:
            proc.terminate()
        why = log.read_text(errors="replace").strip() or f"exit {proc.poll()}"
        raise CliError(f"the virtual board did not start: {why}", f"see {log}", code=1)
    print(line.decode().strip(), flush=True)
    return 0


def run(args: argparse.Namespace) -> int:
    path = _check(args)
    try:
        if args.detach:
            image = Path(args.image) if args.image else default_image(load_board(str(path))["name"])
            return _detach(_argv(args), image.with_name(image.name + ".log").absolute())
        asyncio.run(_serve(args, path))
    except ConfigError as e:
        raise CliError(str(e), "a virtual board takes a board like boards/virtual-esp32.json (doorlink validate "
                       "checks one); for a port another board holds, pass --emulator-port") from None
    except ValueError as e:
        raise CliError(str(e), "give --image a LittleFS image, or a path where one will be made") from None
    except OSError as e:   # the image or the link's folder: missing, not allowed
        raise CliError(f"{e.filename or 'the virtual board'}: {e.strerror or e}",
                       "give --image and --link paths this user can write") from None
    except KeyboardInterrupt:
        pass
    return 0


def _argv(args: argparse.Namespace) -> list[str]:
    """This command without --detach, its paths absolute (the child runs
    from the checkout)."""
    argv = ["emulate", "board", os.path.abspath(board_path(args.board))]
    for flag in ("image", "heap_kb", "flash_kb", "link", "emulator_port"):
        value = getattr(args, flag)
        if value is not None:
            argv += ["--" + flag.replace("_", "-"), str(os.path.abspath(value) if flag in ("image", "link")
                                                       else value)]
    return argv
