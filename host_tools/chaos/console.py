"""The manual console: a technician at a bench types faults one at a time
and watches what the agent does. Fault commands and their arguments come
from the fault table, so the console accepts exactly what the schedule and
the CLI accept, with the same messages.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Callable
from typing import NamedTuple, TextIO

from host_tools.chaos import faults
from host_tools.chaos.proxy import FaultProxy


class Command(NamedTuple):
    action: str
    arg: float | None = None


def format_stats(proxy: FaultProxy) -> str:
    s = proxy.stats
    done = ", ".join(f"{k}={v}" for k, v in s["faults"].items() if v) or "none"
    modes = [k.label(None if k.arg is None else value)
             for k in faults.KINDS.values() if k.mode and (value := proxy.modes[k.name])]
    return (f"connections: {s['live']} live, {s['accepted']} accepted, {s['refused']} refused, "
            f"{s['upstream_failed']} target unreachable; "
            f"bytes: {s['bytes_to_target']} to target, {s['bytes_to_client']} to client; "
            f"faults: {done}; modes: {', '.join(modes) or 'none'}")


# The console's own commands, beside the fault kinds: what they do and their help line.
_COMMANDS: dict[str, tuple[Callable[[FaultProxy], str] | None, str]] = {
    "heal": (faults.heal, "clear every mode"),
    "stats": (format_stats, "connections, bytes, faults and modes so far"),
    "quit": (None, "stop the proxy (also: exit, q, Ctrl-D)"),
    "help": (lambda _: HELP, "what each command does (also: ?)"),
}
_ALIASES = {"exit": "quit", "q": "quit", "?": "help"}

SYNOPSIS = "commands: " + " | ".join([k.synopsis for k in faults.KINDS.values()] + list(_COMMANDS))
HELP = "\n".join(["commands:", *faults.help_lines(),
                  *(faults.help_line(name, text) for name, (_, text) in _COMMANDS.items())])


def parse_command(line: str) -> Command | None:
    """Parse one manual-mode line into a Command; None for a blank line.

    Raises ValueError with a message meant for the technician.
    """
    words = line.split()
    if not words:
        return None
    name = _ALIASES.get(words[0].lower(), words[0].lower())
    args = words[1:]
    if name in faults.KINDS:
        return Command(name, faults.KINDS[name].parse(args))
    if name in _COMMANDS:
        if args:
            raise ValueError(f"{name} takes no argument")
        return Command(name)
    raise ValueError(f"unknown command {words[0]!r}; {SYNOPSIS}")


def apply_command(proxy: FaultProxy, cmd: Command) -> str:
    """Carry out a parsed Command on proxy; returns the line to print."""
    if cmd.action in faults.KINDS:
        return faults.apply(proxy, cmd.action, cmd.arg)
    action, _ = _COMMANDS.get(cmd.action, (None, ""))
    if action is None:
        raise ValueError(f"cannot apply {cmd.action!r}")
    return action(proxy)


def _stdin_lines(stream: TextIO) -> asyncio.Queue[str | None]:
    """Lines of a blocking stream as an asyncio.Queue; None marks EOF.

    A daemon thread reads, so a Ctrl-C never waits for the technician to press Enter.
    """
    loop = asyncio.get_running_loop()
    q: asyncio.Queue[str | None] = asyncio.Queue()

    def reader() -> None:
        try:
            for line in iter(stream.readline, ""):
                loop.call_soon_threadsafe(q.put_nowait, line)
        except (OSError, ValueError):
            pass
        finally:
            try:
                loop.call_soon_threadsafe(q.put_nowait, None)
            except RuntimeError:
                pass  # loop already closed

    threading.Thread(target=reader, name="chaos-stdin", daemon=True).start()
    return q


async def run_manual(proxy: FaultProxy, stream: TextIO | None = None, out: TextIO | None = None,
                     stop: asyncio.Event | None = None) -> None:
    """Read commands from stream (default stdin) until quit, EOF or stop is set."""
    out = out or sys.stdout
    lines = _stdin_lines(stream or sys.stdin)
    stop = stop or asyncio.Event()
    print(SYNOPSIS, file=out, flush=True)
    stopper = asyncio.ensure_future(stop.wait())
    try:
        while not stop.is_set():
            getter = asyncio.ensure_future(lines.get())
            await asyncio.wait([getter, stopper], return_when=asyncio.FIRST_COMPLETED)
            if not getter.done():
                getter.cancel()
                break
            line = getter.result()
            if line is None:
                print("stdin closed; stopping", file=out, flush=True)
                break
            try:
                cmd = parse_command(line)
            except ValueError as e:
                print(f"error: {e}", file=out, flush=True)
                continue
            if cmd is None:
                continue
            if cmd.action == "quit":
                break
            print(apply_command(proxy, cmd), file=out, flush=True)
    finally:
        stopper.cancel()
