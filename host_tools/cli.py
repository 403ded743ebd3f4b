# `doorlink`: the one entry point for host-side jobs.
import argparse
import asyncio
import json
import sys

from host_tools.runner import RUNTIMES

DEFAULT_DB = "bench.sqlite3"


def _bench(args):
    from host_tools.bench import add_device, run_bench, tls_context
    if args.bench_cmd == "add-device":
        add_device(args.db, args.id, args.token)
        print("device %s added to %s" % (args.id, args.db))
        return 0
    ctx = None
    if args.tls_cert:
        try:
            ctx = tls_context(args.tls_cert, args.tls_key)
        except (OSError, ValueError) as e:
            print("error: cannot load --tls-cert/--tls-key: %s" % e, file=sys.stderr)
            return 2
    return run_bench(args.host, args.port, args.db, ssl_context=ctx)


def _run(args):
    from agent.config import load_board
    from agent.errors import ConfigError
    from host_tools.paths import board_path
    from host_tools.runner import start_board
    from host_tools.signals import stop_event

    board_file = board_path(args.board)
    try:
        board = load_board(str(board_file))
    except ConfigError as e:
        print("config error: %s" % e, file=sys.stderr)
        return 2
    if args.runtime and args.runtime not in board["runtimes"]:
        print("error: board %s runs %s, not %s" % (board["name"], ", ".join(board["runtimes"]),
                                                   args.runtime), file=sys.stderr)
        return 2

    async def go():
        session = await start_board(board_file, args.site, runtime=args.runtime,
                                    server=args.server, log_level=args.log_level,
                                    journal=args.journal,
                                    on_line=lambda line: print(line, flush=True))
        stop = stop_event()
        waiter = asyncio.create_task(session.proc.wait())
        stopper = asyncio.create_task(stop.wait())
        await asyncio.wait([waiter, stopper], return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        rc = await session.stop()
        return 0 if stop.is_set() else rc

    return asyncio.run(go())


def _demo(args):
    from host_tools import demo
    return demo.main(args)


def _command(args):
    from host_tools.admin import CommandFailed, send_command
    try:
        payload = json.loads(args.payload)
        if not isinstance(payload, dict):
            raise ValueError("not an object")
    except ValueError as e:
        print("error: --payload must be a JSON object (%s)" % e, file=sys.stderr)
        return 2
    try:
        res = asyncio.run(send_command(args.server, args.device, args.command, payload,
                                       args.timeout))
    except CommandFailed as e:
        print("error: %s" % e, file=sys.stderr)
        return 1
    print(json.dumps(res, indent=2, sort_keys=True))
    return 0 if res.get("ok") else 1


def _journal(args):
    from host_tools import journal_tool
    return journal_tool.main(args)


def _perf(args):
    from host_tools import perf
    return perf.main(args)


def _emulate(args):
    from host_tools import zfm_emulator
    return zfm_emulator.main(args)


def _chaos(args):
    from host_tools import chaos
    return chaos.main(args)


def parser():
    p = argparse.ArgumentParser(prog="doorlink", description="doorlink host tools")
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    b = sub.add_parser("bench", help="run the bench cloud (JSON WebSocket server + SQLite)")
    b.add_argument("--host", default="127.0.0.1")
    b.add_argument("--port", type=int, default=8780)
    b.add_argument("--db", default=DEFAULT_DB, help="SQLite file (default %(default)s)")
    b.add_argument("--tls-cert", help="PEM certificate (chain) to serve wss:// (key included, or --tls-key)")
    b.add_argument("--tls-key", help="PEM private key, if not in --tls-cert")
    bsub = b.add_subparsers(dest="bench_cmd", metavar="SUBCOMMAND")
    ad = bsub.add_parser("add-device", help="add a device (or change its token)")
    ad.add_argument("--id", required=True)
    ad.add_argument("--token", required=True)
    ad.add_argument("--db", default=DEFAULT_DB)

    r = sub.add_parser("run", help="run the agent on this host (a Pi, or a desktop with an emulated board)")
    r.add_argument("--board", required=True, help="board file or name in boards/, e.g. emulated")
    r.add_argument("--site", required=True, help="site file: server URL, device id, token")
    r.add_argument("--runtime", choices=RUNTIMES, help="default: the board's first runtime")
    r.add_argument("--server", help="override the site file's server URL")
    r.add_argument("--journal", help="override the board's journal folder")
    r.add_argument("--log-level", default="info", choices=("debug", "info", "warn", "error"))

    d = sub.add_parser("demo", help="bench + emulated board + agent on 127.0.0.1, with a live log")
    d.add_argument("--port", type=int, default=8780, help="bench port (default %(default)s)")
    d.add_argument("--db", help="bench SQLite file (default: a temporary file)")
    d.add_argument("--duration", type=float, help="stop after this many seconds")
    d.add_argument("--runtime", choices=RUNTIMES, default="micropython")
    d.add_argument("--emulator-port", type=int, default=0, help="emulator port (default: any free)")
    d.add_argument("--attendance", action="store_true",
                   help="an attendance terminal: emulated fingerprint reader, punches")
    d.add_argument("--uplink", choices=("json_ws", "xml_ws", "http"), default="json_ws",
                   help="cloud protocol (default json_ws; terminals usually speak xml_ws or http)")

    c = sub.add_parser("command", help="send a command to a device as an admin and print its result")
    c.add_argument("device")
    c.add_argument("command", help="e.g. unlock, lock, status")
    c.add_argument("--payload", default="{}", help='JSON object, e.g. \'{"duration_ms": 5000}\'')
    c.add_argument("--server", default="ws://127.0.0.1:8780/ws")
    c.add_argument("--timeout", type=float, default=10.0)
    from host_tools import chaos, journal_tool, perf, zfm_emulator
    journal_tool.add_parser(sub)
    chaos.add_parser(sub)
    perf.add_parser(sub)
    zfm_emulator.add_parser(sub)
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    handler = {"bench": _bench, "run": _run, "demo": _demo, "command": _command,
               "journal": _journal, "chaos": _chaos, "perf": _perf, "emulate": _emulate}[args.cmd]
    sys.exit(handler(args))


if __name__ == "__main__":
    main()
