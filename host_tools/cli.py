"""`doorlink`: the one entry point for host-side jobs.

Each command lives in a module of its own that owns its parser and its
handler (see host_tools/cli_common.py for the convention). This module only
builds the parser from them and handles the one error type, once: a
CliError prints `error: ...` (and what to do next) and exits with its code
(2 for a mistake in what was asked, 1 for a job that failed).

A machine may hold only some of the extras: a Raspberry Pi installs `pi`
(no aiohttp), yet `doorlink run` must work there. So a command whose module
cannot be imported is still listed, and says what to install when used.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from agent import __version__
from host_tools.cli_common import CliError, Parents, parents

# command -> the module that owns it
COMMANDS = {
    "run": "host_tools.run",
    "demo": "host_tools.demo",
    "bench": "host_tools.bench.cli",
    "command": "host_tools.admin",
    "control": "host_tools.control_cli",
    "journal": "host_tools.journal_tool",
    "emulate": "host_tools.emulate",
    "chaos": "host_tools.chaos.cli",
    "perf": "host_tools.perf_cli",
    "validate": "host_tools.validate",
    "flash": "host_tools.flash",
    "install-service": "host_tools.install_service",
    "logs": "host_tools.logs",
    "fleet": "host_tools.fleet",
}


def _unavailable(sub: argparse._SubParsersAction, name: str, missing: str, shared: Parents) -> None:
    """A command whose dependencies are not installed on this machine."""
    def handler(args: argparse.Namespace) -> int:
        raise CliError(f"`doorlink {name}` needs {missing}, which is not installed here",
                       "pip install 'doorlink[host]' (a laptop's tools; a Pi running the agent needs only [pi])")
    p = sub.add_parser(name, help=f"(not available: needs {missing})", add_help=False)
    p.set_defaults(handler=handler, unavailable=True)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="doorlink", description="doorlink host tools: run the agent, a bench cloud, "
                                "emulators, fault injection and benchmarks")
    p.add_argument("--version", action="version", version=f"doorlink {__version__}")
    sub = p.add_subparsers(dest="command_name", required=True, metavar="COMMAND")
    shared = parents()
    for name, module_name in COMMANDS.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as e:
            if e.name and e.name.split(".")[0] in ("agent", "host_tools"):
                raise  # our own code is broken: say so, loudly
            _unavailable(sub, name, e.name or "a package", shared)
            continue
        module.add_parser(sub, shared)
    return p


def main(argv: Sequence[str] | None = None) -> None:
    p = parser()
    args, rest = p.parse_known_args(argv)
    if rest and not getattr(args, "unavailable", False):
        p.error(f"unrecognized arguments: {' '.join(rest)}")
    try:
        code = args.handler(args)
    except CliError as e:
        print(f"error: {e}", file=sys.stderr)
        code = e.code
    except KeyboardInterrupt:
        code = 130
    sys.exit(code)


if __name__ == "__main__":
    main()
