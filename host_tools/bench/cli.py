"""`doorlink bench`: run the bench cloud, and provision devices on it.

    doorlink bench [--host H] [--port P] [--db FILE] [--tls-cert PEM [--tls-key PEM]]
    doorlink bench add-device --id ID --token TOKEN [--db FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import ssl

from host_tools.cli_common import CliError, Parents, port_number

from .app import serve, tls_context
from .store import add_device


def add_parser(sub: argparse._SubParsersAction, parents: Parents) -> argparse.ArgumentParser:
    p = sub.add_parser("bench", parents=[parents.db],
                       help="run the bench cloud (JSON WebSocket, XML biometric, CloudSolution HTTP + SQLite)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default %(default)s)")
    p.add_argument("--port", type=port_number, default=8780, help="port (default %(default)s)")
    p.add_argument("--tls-cert",
                   help="PEM certificate (chain) to serve wss:// and https:// (key included, or --tls-key)")
    p.add_argument("--tls-key", help="PEM private key, if not in --tls-cert")
    p.set_defaults(handler=run)
    bsub = p.add_subparsers(dest="bench_command", metavar="SUBCOMMAND")
    ad = bsub.add_parser("add-device", parents=[parents.db], help="add a device (or change its token)")
    ad.add_argument("--id", required=True, help="the device's id (site file device_id, XML serial, HTTP sn)")
    ad.add_argument("--token", required=True, help="its secret (site file token, XML CloudId)")
    ad.set_defaults(handler=run_add_device)
    return p


def run_add_device(args: argparse.Namespace) -> int:
    try:
        add_device(args.db, args.id, args.token)
    except ValueError as e:
        raise CliError(str(e), "give a non-empty --id and --token") from None
    print(f"device {args.id} added to {args.db}")
    return 0


def run(args: argparse.Namespace) -> int:
    ctx: ssl.SSLContext | None = None
    if args.tls_cert:
        try:
            ctx = tls_context(args.tls_cert, args.tls_key)
        except (OSError, ValueError, ssl.SSLError) as e:
            raise CliError(f"cannot load --tls-cert/--tls-key: {e}",
                           "give a PEM certificate and its key (one file, or --tls-key for the key)") from None
    try:
        asyncio.run(serve(args.host, args.port, args.db, ssl_context=ctx))
    except OSError as e:
        raise CliError(f"cannot listen on {args.host}:{args.port} ({e.strerror or e})",
                       "another bench or demo may run there: pass --port with a free port") from None
    except KeyboardInterrupt:
        pass
    return 0
