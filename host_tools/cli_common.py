"""What every `doorlink` command shares: the one error type and the parent
parsers for common flags.

A command module (host_tools/commands/*.py and the packages that hold their
own, e.g. host_tools/chaos/cli.py) exposes

    def add_parser(subparsers, parents: Parents) -> argparse.ArgumentParser

which adds its subcommand, its flags (taking shared ones from `parents`)
and sets `handler=<function(args) -> int>` with `set_defaults`. A handler
returns the exit code, or raises CliError for anything the user can fix:
`main()` prints it once, in one format, and exits with its code (2 for a
usage mistake).
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
from dataclasses import dataclass

from agent.log import LEVELS

RUNTIMES = ("micropython", "cpython")
DEFAULT_DB = "bench.sqlite3"
DEFAULT_SERVER = "ws://127.0.0.1:8780/ws"
TOKEN_ENV = "DOORLINK_ADMIN_TOKEN"   # the admin token of `doorlink command`, `control` and `logs --device`
TOKEN_HINT = f"give the admin token: --token or ${TOKEN_ENV} (doorlink bench add-admin makes one)"


class CliError(Exception):
    """What went wrong, and what to do next. Exit code 2 for a mistake in
    what the user asked (a bad flag, a broken file), 1 for a job that was
    asked rightly and failed (the device refused, nothing answered)."""

    def __init__(self, problem: str, fix: str | None = None, code: int = 2) -> None:
        super().__init__(problem)
        self.problem = problem
        self.fix = fix
        self.code = code

    def __str__(self) -> str:
        return self.problem if not self.fix else f"{self.problem}\n  -> {self.fix}"


@dataclass(frozen=True)
class Parents:
    """Parent parsers: pass the ones a command takes as `parents=[...]`."""

    db: argparse.ArgumentParser
    runtime: argparse.ArgumentParser
    log_level: argparse.ArgumentParser
    server: argparse.ArgumentParser


def parents() -> Parents:
    def parser() -> argparse.ArgumentParser:
        return argparse.ArgumentParser(add_help=False)

    db = parser()
    db.add_argument("--db", default=DEFAULT_DB, help="bench SQLite file (default %(default)s)")
    runtime = parser()
    runtime.add_argument("--runtime", choices=RUNTIMES, help="agent runtime (default: the board's first)")
    log_level = parser()
    log_level.add_argument("--log-level", default="info", choices=tuple(LEVELS),
                           help="agent log level (default %(default)s)")
    server = parser()
    server.add_argument("--server", default=DEFAULT_SERVER, help="bench URL (default %(default)s)")
    return Parents(db=db, runtime=runtime, log_level=log_level, server=server)


def is_loopback(host: str) -> bool:
    """Test tools (the fault proxy, the emulators' control ports) listen on
    loopback unless told otherwise: anyone who reaches them drives them."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def add_token(p: argparse.ArgumentParser, when: str = "") -> None:
    """The admin token option the bench's admin tools share."""
    p.add_argument("--token", default=os.environ.get(TOKEN_ENV),
                   help=f"admin token, {when}where the bench wants one (default: ${TOKEN_ENV})")


def positive(text: str) -> float:
    """argparse type: a number > 0 (durations, rates)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or value != value or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text}")
    return value


SECRET_MAX = 4096   # bytes read for one secret from a file or stdin
SECRET_HELP = "'-' reads it from standard input, '@FILE' from a file (on the command line, ps shows it)"


def secret(text: str) -> str:
    """argparse type for a token or key: as given, or `-` to read it from
    standard input, or `@FILE` to read it from a file (its first line) -
    given on the command line it shows in `ps` to every user of the
    machine."""
    if text == "-":
        value = sys.stdin.readline(SECRET_MAX + 1)
        where = "standard input"
    elif text.startswith("@"):
        try:
            with open(text[1:], encoding="utf-8") as f:
                value = f.readline(SECRET_MAX + 1)
        except (OSError, UnicodeError) as e:
            raise argparse.ArgumentTypeError(f"cannot read {text[1:]!r}: {getattr(e, 'strerror', None) or e}") \
                from None
        where = text[1:]
    else:
        return text
    value = value.strip()
    if not value or len(value) > SECRET_MAX:
        raise argparse.ArgumentTypeError(f"no secret on the first line of {where} (one line, at most "
                                         f"{SECRET_MAX} characters)")
    return value


def port_number(text: str) -> int:
    """argparse type: a TCP port, 0 (any free one) to 65535."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 0-65535, got {value}")
    return value
