"""`doorlink perf`: the command (its arguments, and which benchmark runs).
The benchmarks live in perf.py (journal, attendance), perf_door.py,
perf_footprint.py, perf_boot.py and perf_all.py (all of them, one table);
this module only dispatches, so none of them imports another's caller."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from host_tools.cli_common import CliError, Parents
from host_tools.paths import BUILD
from host_tools.perf import run_attendance, run_journal

WHAT = ("all", "journal", "attendance", "door", "footprint", "boot")
MAX_EVENTS = 100000


def add_parser(sub: argparse._SubParsersAction, parents: Parents) -> argparse.ArgumentParser:
    p = sub.add_parser("perf", help="benchmarks that print figures (no pass/fail)")
    p.add_argument("what", nargs="?", default="all", choices=WHAT,
                   help="all (default): every benchmark at a small scale, one table (a few minutes); "
                        "journal: appends and replay; attendance: punch-to-cloud latency and backlog drain; "
                        "door: cloud command, exit button and card to relay on the virtual board, "
                        "decisions among 10,000 users, full-sync time; footprint: the smallest MicroPython "
                        "heap per board and uplink, .mpy size, bytecode share; boot: power-on to relay "
                        "locked and to online")
    p.add_argument("--users", type=int, default=10000, help="door: users synced to the store (>= 100)")
    p.add_argument("--records", type=int, default=500, help="journal appends per run (>= 1)")
    p.add_argument("--punches", type=int, default=50, help="attendance punches per run (>= 1)")
    p.add_argument("--replay-records", type=int, default=1000, help="journal records replayed (>= 50)")
    p.add_argument("--events", type=int, default=10000,
                   help="footprint and all: backlog events of the standard scenario (default %(default)s)")
    p.add_argument("--scale", choices=("small", "tiny"), default="small",
                   help="all: small (default, a few minutes) or tiny (a smoke run: the figures mean little)")
    p.add_argument("--json", metavar="FILE", help="all: write the figures to FILE")
    p.add_argument("--compare", metavar="OLD.json", help="all: print the change since the run that wrote OLD.json")
    p.set_defaults(handler=run)
    return p


def run(args: argparse.Namespace) -> int:
    if args.records < 1 or args.replay_records < 50 or args.punches < 1:
        raise CliError("--records and --punches must be >= 1, --replay-records >= 50",
                       "the figures mean little below that")
    if not 100 <= args.events <= MAX_EVENTS:
        raise CliError(f"--events must be from 100 to {MAX_EVENTS}", "the standard scenario is 10,000")
    if (args.json or args.compare) and args.what != "all":
        raise CliError("--json and --compare go with `doorlink perf all`", f"leave out {args.what!r}")
    if args.what == "all":
        from host_tools import perf_all
        scale = perf_all.TINY if args.scale == "tiny" else perf_all.Scale(events=args.events)
        return perf_all.main(args, scale)
    if args.what == "door":
        if not 100 <= args.users <= 20000:
            raise CliError("--users must be from 100 to 20000", "a board's store holds at most 20,000")
        from host_tools.perf_door import run_door
        print(run_door(args.users), flush=True)
    elif args.what == "attendance":
        print(run_attendance(args.punches), flush=True)
    elif args.what in ("footprint", "boot"):
        from host_tools import perf_boot, perf_footprint
        BUILD.mkdir(exist_ok=True)
        with tempfile.TemporaryDirectory(dir=BUILD) as d:
            if args.what == "boot":
                print(perf_boot.render(perf_boot.measure(Path(d))), flush=True)
            else:
                print(perf_footprint.render(perf_footprint.measure(Path(d), args.events)), flush=True)
    else:
        print(run_journal(args.records, args.replay_records), flush=True)
    return 0
