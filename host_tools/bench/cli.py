"""`doorlink bench`: run the bench cloud, and provision devices and admins
on it.

    doorlink bench [--host H] [--port P] [--db FILE] [--tls-cert PEM [--tls-key PEM]]
                   [--require-auth] [--allow-origin ORIGIN]... [--trust-sn-only]
    doorlink bench add-device --id ID --token TOKEN [--control-key KEY] [--db FILE]
    doorlink bench add-admin --name NAME --token TOKEN [--db FILE]
    doorlink bench add-user --token TOKEN [--appid A] [--uid U] --device ID [--device ID2 ...] [--db FILE]

`--db` may come before or after the subcommand: the subcommand's own flag
has no default, so `doorlink bench --db X add-device ...` writes to X.
Every mistake (a port in use, a --db that is not a bench database or
cannot be written) is one CliError line, exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import ssl
from collections.abc import Callable

from host_tools.cli_common import SECRET_HELP, CliError, Parents, is_loopback, port_number, secret

from .app import serve, tls_context
from .store import (
    DEFAULT_APPID,
    MIN_ADMIN_TOKEN,
    MIN_CONTROL_KEY,
    MIN_USER_TOKEN,
    StoreError,
    add_admin,
    add_device,
    add_user,
)

DB_FIX = "give --db a path where a bench database can be created, or an existing bench database"


def _sub_db() -> argparse.ArgumentParser:
    """--db for a subcommand: no default of its own, so the one given to
    `doorlink bench` (or its default) stands unless it is repeated here."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--db", default=argparse.SUPPRESS, help="bench SQLite file (default: the bench's --db)")
    return p


def add_parser(sub: argparse._SubParsersAction, parents: Parents) -> argparse.ArgumentParser:
    p = sub.add_parser("bench", parents=[parents.db],
                       help="run the bench cloud (JSON WebSocket, XML biometric, CloudSolution HTTP + SQLite)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default %(default)s; any other address requires admin tokens)")
    p.add_argument("--port", type=port_number, default=8780, help="port (default %(default)s)")
    p.add_argument("--tls-cert",
                   help="PEM certificate (chain) to serve wss:// and https:// (key included, or --tls-key)")
    p.add_argument("--tls-key", help="PEM private key, if not in --tls-cert")
    p.add_argument("--require-auth", action="store_true",
                   help="admins need a token on loopback too (always beyond loopback)")
    p.add_argument("--allow-origin", action="append", default=[], metavar="ORIGIN",
                   help="a browser origin allowed to use the bench, e.g. https://dash.example.com "
                        "(repeatable; default: none but the bench's own loopback origins)")
    p.add_argument("--trust-sn-only", action="store_true",
                   help="let CloudSolution devices in on their serial number alone, without a token "
                        "(legacy terminals on a closed network only)")
    p.set_defaults(handler=run)
    bsub = p.add_subparsers(dest="bench_command", metavar="SUBCOMMAND")
    ad = bsub.add_parser("add-device", parents=[_sub_db()], help="add a device (or change its token)")
    ad.add_argument("--id", required=True, help="the device's id (site file device_id, XML serial, HTTP sn)")
    ad.add_argument("--token", required=True, type=secret,
                    help="its secret (site file token, XML CloudId); stored hashed. " + SECRET_HELP)
    ad.add_argument("--control-key", metavar="KEY", type=secret,
                    help=f"sign its management requests with KEY (the site file's control key, at least "
                         f"{MIN_CONTROL_KEY} characters); stored as given, the database made owner-only. "
                         + SECRET_HELP)
    ad.set_defaults(handler=run_add_device)
    aa = bsub.add_parser("add-admin", parents=[_sub_db()], help="add an admin (or change its token)")
    aa.add_argument("--name", required=True, help="who it is (shown in the bench's log)")
    aa.add_argument("--token", required=True, type=secret,
                    help=f"its secret, at least {MIN_ADMIN_TOKEN} characters; stored hashed "
                         "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(24))'). " + SECRET_HELP)
    aa.set_defaults(handler=run_add_admin)
    au = bsub.add_parser("add-user", parents=[_sub_db()],
                         help="add an app user bound to devices (the Gizwits and developer-center app APIs)")
    au.add_argument("--token", required=True, type=secret,
                    help=f"its secret, at least {MIN_USER_TOKEN} characters; stored hashed. " + SECRET_HELP)
    au.add_argument("--appid", default=None, help=f"the app it logs in from (default {DEFAULT_APPID})")
    au.add_argument("--uid", default=None, help="its user id (default: made from the first --device, user-ID)")
    au.add_argument("--device", action="append", required=True, metavar="ID",
                    help="a device bound to it (repeatable): it sees and commands only these")
    au.set_defaults(handler=run_add_user)
    return p


def _provision(add: Callable[[], None], done: str, fix: str) -> int:
    """Run add_device or add_admin: every mistake one CliError."""
    try:
        add()
    except StoreError as e:
        raise CliError(str(e), DB_FIX) from None
    except ValueError as e:
        raise CliError(str(e), fix) from None
    print(done)
    return 0


def run_add_device(args: argparse.Namespace) -> int:
    return _provision(lambda: add_device(args.db, args.id, args.token, args.control_key),
                      f"device {args.id} added to {args.db}",
                      f"give a non-empty --id and --token (and a --control-key of at least {MIN_CONTROL_KEY} "
                      "random characters)")


def run_add_admin(args: argparse.Namespace) -> int:
    return _provision(lambda: add_admin(args.db, args.name, args.token), f"admin {args.name} added to {args.db}",
                      f"give a non-empty --name and a --token of at least {MIN_ADMIN_TOKEN} random characters")


def run_add_user(args: argparse.Namespace) -> int:
    uid = args.uid if args.uid is not None else f"user-{args.device[0]}"
    appid = args.appid if args.appid is not None else DEFAULT_APPID
    return _provision(lambda: add_user(args.db, args.token, appid, uid, args.device),
                      f"user {uid} (appid {appid}) bound to {', '.join(args.device)} added to {args.db}",
                      f"give a --token of at least {MIN_USER_TOKEN} random characters and non-empty "
                      "--uid, --appid and --device values")


def run(args: argparse.Namespace) -> int:
    ctx: ssl.SSLContext | None = None
    if args.tls_cert:
        try:
            ctx = tls_context(args.tls_cert, args.tls_key)
        except (OSError, ValueError, ssl.SSLError) as e:
            raise CliError(f"cannot load --tls-cert/--tls-key: {e}",
                           "give a PEM certificate and its key (one file, or --tls-key for the key)") from None
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not is_loopback(args.host) and ctx is None:
        logging.getLogger("doorlink.bench").warning(
            "listening on %s without TLS: tokens cross the network in clear (--tls-cert)", args.host)
    try:
        asyncio.run(serve(args.host, args.port, args.db, ssl_context=ctx, require_auth=args.require_auth,
                          trust_sn_only=args.trust_sn_only, allow_origins=args.allow_origin))
    except StoreError as e:
        raise CliError(str(e), DB_FIX) from None
    except OSError as e:
        raise CliError(f"cannot listen on {args.host}:{args.port} ({e.strerror or e})",
                       "another bench or demo may run there: pass --port with a free port") from None
    except KeyboardInterrupt:
        pass
    return 0
