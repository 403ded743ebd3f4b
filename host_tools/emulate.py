"""`doorlink emulate reader`: a ZFM fingerprint module on a pty that the
agent, or any ZFM client (the pyfingerprint library over pyserial), opens
as it would /dev/serial0.

    doorlink emulate reader [--json] [--library-size N] [--control HOST:PORT]

It prints where it is - the pty's path and its control address - then takes
commands on stdin and on the control port, one per line, answering each
with one line:

    place N | unknown | smudge | lift        a finger on the sensor, or none
    enroll N | list                          the template library
    noise N | corrupt | silent N | reject CODE
                                             line faults for the next replies: N random
                                             bytes before one, one bad checksum, the
                                             next N commands unanswered, one answered
                                             with confirmation CODE
    answered CODE [CONFIRM]                  how many commands CODE were answered (with
                                             CONFIRM, if given): a test waits on it
    help | quit

Codes are numbers, decimal or 0x..: `reject 0x18`, `answered 0x02 0x02`.
It runs until `quit`, Ctrl-C or SIGTERM. Its stdin reaching the end does not
stop it, so a script can start it in the background (`... --json &`) and
drive fingers and faults through the control port.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import threading
from collections.abc import Callable

from agent.codecs.url import split_hostport
from host_tools import emulate_board
from host_tools.cli_common import CliError, Parents, is_loopback
from host_tools.signals import stop_event
from host_tools.zfm_emulator import BAUD, ReaderEmulator

QUIT = "quit"
MAX_NOISE = 4096   # bytes of line noise one command may ask for


def _finger(word: str) -> int | None:
    return int(word) if word.isdigit() else None


def _count(word: str) -> int | None:
    return int(word) if word.isdigit() and int(word) <= MAX_NOISE else None


def _code(word: str) -> int | None:
    """A ZFM command or confirmation code: decimal or 0x.., one byte."""
    low = word.lower()
    digits, base = (low[2:], 16) if low.startswith("0x") else (low, 10)
    if not digits or any(c not in "0123456789abcdef"[:base] for c in digits):
        return None
    value = int(digits, base)
    return value if value <= 0xFF else None


class _Arg:
    """One argument of a command: its name in the help, how it is read
    (None: not acceptable), what to ask for when it is wrong."""

    def __init__(self, name: str, read: Callable[[str], int | None], wanted: str, example: str,
                 optional: bool = False) -> None:
        self.name, self.read, self.wanted, self.example, self.optional = name, read, wanted, example, optional


FINGER = _Arg("N", _finger, "a finger number", "3")
COUNT = _Arg("N", _count, f"a count from 0 to {MAX_NOISE}", "2")
REPLY = _Arg("CODE", _code, "a confirmation code (0 to 0xff)", "0x18")
COMMAND = _Arg("CODE", _code, "a command code (0 to 0xff)", "0x01")
CONFIRM = _Arg("CONFIRM", _code, "a confirmation code", "0x00", optional=True)


def _list(emu: ReaderEmulator) -> str:
    return json.dumps({"templates": {str(k): v for k, v in sorted(emu.templates().items())}})


# command -> (its arguments, what it does: returns the answer line, None for "ok")
COMMANDS: dict[str, tuple[tuple[_Arg, ...], Callable[..., str | None]]] = {
    "place": ((FINGER,), ReaderEmulator.place),
    "unknown": ((), ReaderEmulator.place_unknown),
    "smudge": ((), ReaderEmulator.place_smudged),
    "lift": ((), ReaderEmulator.lift),
    "enroll": ((FINGER,), ReaderEmulator.enroll),
    "list": ((), _list),
    "noise": ((COUNT,), ReaderEmulator.noise),
    "corrupt": ((), ReaderEmulator.corrupt_next_checksum),
    "silent": ((COUNT,), ReaderEmulator.silent),
    "reject": ((REPLY,), ReaderEmulator.reject_next),
    "answered": ((COMMAND, CONFIRM), lambda emu, *codes: str(emu.answered(*codes))),
}


def _usage(cmd: str) -> str:
    return " ".join([cmd] + [f"[{a.name}]" if a.optional else a.name for a in COMMANDS[cmd][0]])


HELP = "commands: " + " | ".join([_usage(c) for c in COMMANDS] + ["help", QUIT])


def execute(emu: ReaderEmulator, line: str) -> str | None:
    """One command line -> its answer line; None for `quit`."""
    words = line.split()
    if not words:
        return ""
    cmd, args = words[0].lower(), words[1:]
    if cmd == QUIT:
        return None
    if cmd == "help":
        return HELP
    if cmd not in COMMANDS:
        return f"error: unknown command {words[0]!r}; {HELP}"
    spec, action = COMMANDS[cmd]
    needed = [a for a in spec if not a.optional]
    if not spec and args:
        return f"error: {cmd} takes no argument"
    values = [a.read(w) for a, w in zip(spec, args, strict=False)]
    if len(args) < len(needed) or len(args) > len(spec) or None in values:
        wanted = " and ".join(a.wanted for a in needed)
        wanted += "".join(f", then optionally {a.wanted}" for a in spec if a.optional)
        return f"error: {cmd} needs {wanted}, e.g. '{' '.join([cmd] + [a.example for a in needed])}'"
    reply = action(emu, *values)
    return "ok" if reply is None else reply


def add_parser(sub: argparse._SubParsersAction, parents: Parents) -> argparse.ArgumentParser:
    e = sub.add_parser("emulate", help="emulate a peripheral on this host")
    esub = e.add_subparsers(dest="device", required=True, metavar="DEVICE")
    r = esub.add_parser("reader", help="a ZFM fingerprint module on a pty; fingers driven from stdin or TCP")
    r.add_argument("--json", action="store_true", help='print {"path": ..., "control": ...} instead of text')
    r.add_argument("--library-size", type=int, default=300, help="templates it holds, 1-1000 (default 300)")
    r.add_argument("--control", default="127.0.0.1:0", metavar="HOST:PORT",
                   help="where to take commands over TCP (default %(default)s: any free port on loopback)")
    r.add_argument("--allow-nonlocal", action="store_true", help="allow --control on a non-loopback address")
    r.set_defaults(handler=run)
    emulate_board.add_parser(esub)
    return e


def _stdin_lines(loop: asyncio.AbstractEventLoop, queue: asyncio.Queue) -> None:
    """Lines of stdin into `queue` (a thread: a Ctrl-C never waits for
    Enter); at the end of stdin, nothing more - the emulator runs on."""
    try:
        for line in sys.stdin:
            loop.call_soon_threadsafe(queue.put_nowait, line)
    except (OSError, ValueError):
        pass


async def serve(emu: ReaderEmulator, control: tuple[str, int], as_json: bool) -> None:
    stop = stop_event()

    def answer(line: str) -> str | None:
        reply = execute(emu, line)
        if reply is None:
            stop.set()
        return reply

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while not stop.is_set():
                line = await reader.readline()
                if not line:
                    break
                reply = answer(line.decode("utf-8", "replace"))
                writer.write(((reply if reply is not None else "bye") + "\n").encode())
                await writer.drain()
        except (ConnectionError, ValueError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(client, *control, limit=1024)
    host, port = server.sockets[0].getsockname()[:2]
    if as_json:
        print(json.dumps({"path": emu.path, "control": f"{host}:{port}", "baud": BAUD}), flush=True)
    else:
        print(f"fingerprint module on {emu.path} ({BAUD} baud, library {emu.library_size}); "
              f"control on {host}:{port}; {HELP}", flush=True)
    lines: asyncio.Queue = asyncio.Queue()
    threading.Thread(target=_stdin_lines, args=(asyncio.get_running_loop(), lines), daemon=True).start()

    async def console() -> None:
        while True:
            reply = answer(await lines.get())
            if reply is None:
                return
            if reply:
                print(reply, flush=True)

    typed = asyncio.create_task(console())
    try:
        await stop.wait()
    finally:
        typed.cancel()
        server.close()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(server.wait_closed(), 1)


def run(args: argparse.Namespace) -> int:
    if not 1 <= args.library_size <= 1000:
        raise CliError(f"--library-size must be from 1 to 1000, got {args.library_size}",
                       "real modules hold 150 to 1000 templates")
    try:
        control = split_hostport(args.control, default_port=0)
    except ValueError as e:
        raise CliError(f"--control: {e}", "give HOST:PORT, e.g. 127.0.0.1:8790") from None
    if not is_loopback(control[0]) and not args.allow_nonlocal:
        raise CliError(f"--control {control[0]} is not a loopback address: anyone who reaches it places fingers",
                       "keep it on 127.0.0.1, or pass --allow-nonlocal if you really mean it")
    emu = ReaderEmulator(library_size=args.library_size).start()
    try:
        asyncio.run(serve(emu, control, args.json))
    except OSError as e:
        raise CliError(f"cannot listen on {args.control} ({e.strerror or e})", "pass --control with a free port") \
            from None
    except KeyboardInterrupt:
        pass
    finally:
        emu.stop()
    return 0
