"""`doorlink emulate reader`: a ZFM fingerprint module on a pty that the
agent, or any ZFM client (the pyfingerprint library over pyserial), opens
as it would /dev/serial0.

    doorlink emulate reader [--json] [--library-size N] [--control HOST:PORT]

It prints where it is - the pty's path and its control address - then takes
commands on stdin and on the control port, one per line, answering each
with one line:

    place N | unknown | smudge | lift | enroll N | list | help | quit

It runs until `quit`, Ctrl-C or SIGTERM. Its stdin reaching the end does not
stop it, so a script can start it in the background (`... --json &`) and
drive fingers through the control port.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import threading

from agent.codecs.url import split_hostport
from host_tools.cli_common import CliError, Parents
from host_tools.signals import stop_event
from host_tools.zfm_emulator import BAUD, ReaderEmulator

HELP = "commands: place N | unknown | smudge | lift | enroll N | list | help | quit"
QUIT = "quit"


def execute(emu: ReaderEmulator, line: str) -> str | None:
    """One command line -> its answer line; None for `quit`."""
    words = line.split()
    if not words:
        return ""
    cmd, args = words[0].lower(), words[1:]
    if cmd == QUIT:
        return None
    actions = {"place": emu.place, "enroll": emu.enroll, "unknown": emu.place_unknown,
               "smudge": emu.place_smudged, "lift": emu.lift}
    if cmd == "list":
        return json.dumps({"templates": {str(k): v for k, v in sorted(emu.templates().items())}})
    if cmd == "help":
        return HELP
    if cmd not in actions:
        return f"error: unknown command {words[0]!r}; {HELP}"
    wants_finger = cmd in ("place", "enroll")
    if wants_finger and (len(args) != 1 or not args[0].isdigit()):
        return f"error: {cmd} needs a finger number, e.g. '{cmd} 3'"
    if not wants_finger and args:
        return f"error: {cmd} takes no argument"
    actions[cmd](*(int(a) for a in args))
    return "ok"


def add_parser(sub: argparse._SubParsersAction, parents: Parents) -> argparse.ArgumentParser:
    e = sub.add_parser("emulate", help="emulate a peripheral on this host")
    esub = e.add_subparsers(dest="device", required=True, metavar="DEVICE")
    r = esub.add_parser("reader", help="a ZFM fingerprint module on a pty; fingers driven from stdin or TCP")
    r.add_argument("--json", action="store_true", help='print {"path": ..., "control": ...} instead of text')
    r.add_argument("--library-size", type=int, default=300, help="templates it holds, 1-1000 (default 300)")
    r.add_argument("--control", default="127.0.0.1:0", metavar="HOST:PORT",
                   help="where to take commands over TCP (default %(default)s: any free port on loopback)")
    r.set_defaults(handler=run)
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
