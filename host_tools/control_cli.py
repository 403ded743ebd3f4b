"""`doorlink control`: one cloud-control request to a device's management
channel, through the bench (`POST /api/control/DEVICE`), and its reply.

    doorlink control door-1 app/state
    doorlink control door-1 system/log/get '{"last": 20}'
    doorlink control door-1 file/put '{"path": "/notes.txt"}' --file notes.txt
    doorlink control door-1 screen/snapshot '{"format": "png", "scale": 100}' --out screen.png

BODY is JSON. `--file` sends a file's bytes base64-encoded as the body's
`data` field (file/put, script/put); `--out` writes a reply's base64 body
(file/get, script/get, screen/snapshot) to a file instead of printing it.
The bench signs the request when the device has a control key. The admin
token comes from --token or $DOORLINK_ADMIN_TOKEN, as for `doorlink command`.
Exit codes: 0 the device did it, 1 it said no or could not be reached,
2 a mistake in what was asked.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
from yarl import URL

from host_tools.bench.control import MAX_ANSWER_S, MAX_MESSAGE, check_type
from host_tools.cli_common import TOKEN_HINT, CliError, Parents, add_token, positive

# base64 grows by 4/3; the rest of the request needs a little room too.
MAX_FILE = MAX_MESSAGE // 4 * 3 - 4096
_HTTP = {"ws": "http", "wss": "https", "http": "http", "https": "https"}


def api_url(server: str, device: str) -> str:
    """The bench's control API for `device`, from the --server URL every
    admin command takes (ws://HOST:PORT/ws, or http://HOST:PORT)."""
    try:
        url = URL(server)
    except (ValueError, TypeError):
        url = None
    if url is None or url.scheme not in _HTTP or not url.host:
        raise CliError(f"--server {server!r} is not a bench URL", "e.g. --server ws://127.0.0.1:8780/ws")
    base = url.with_scheme(_HTTP[url.scheme]).with_path("/").with_query(None).with_fragment(None)
    return f"{str(base).rstrip('/')}/api/control/{quote(device, safe='')}"


def _body(text: str | None, file: str | None) -> Any:
    """BODY parsed, with --file's content as its `data`."""
    body = None
    if text is not None:
        try:
            body = json.loads(text)
        except ValueError as e:
            raise CliError(f"BODY is not JSON ({e})", 'give a JSON value, e.g. \'{"last": 20}\'') from None
    if file is None:
        return body
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise CliError("--file needs BODY to be a JSON object (its content goes in the object's 'data')",
                       'e.g. \'{"path": "/notes.txt"}\' --file notes.txt')
    path = Path(file)
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise CliError(f"--file {file} is not a file", "give a regular file")
        if size > MAX_FILE:
            raise CliError(f"--file {file} is {size} bytes, over the {MAX_FILE} byte limit of one message",
                           "the cloud-control API carries a file whole: send a smaller one")
        data = path.read_bytes()
    except OSError as e:
        raise CliError(f"cannot read --file {file}: {e.strerror or e}", "give a readable file") from None
    return dict(body, data=base64.b64encode(data).decode("ascii"))


async def request(url: str, message: dict, timeout: float, token: str | None) -> tuple[int, Any]:
    """POST the request; (HTTP status, the JSON answer). CliError (exit 1)
    when the bench cannot be reached or does not answer in JSON."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        async with aiohttp.ClientSession() as session, session.post(
                url, json=message, params={"timeout": f"{timeout:g}"}, headers=headers,
                timeout=aiohttp.ClientTimeout(total=timeout + 15)) as r:
            if r.content_length is not None and r.content_length > 2 * MAX_MESSAGE:
                raise CliError(f"the bench's answer is {r.content_length} bytes: too large to be a reply", code=1)
            text = await r.text()
            status = r.status
    except (aiohttp.ClientError, OSError, TimeoutError) as e:
        raise CliError(f"cannot reach {url}: {e or type(e).__name__}", "is the bench running? (--server URL)",
                       code=1) from None
    try:
        return status, json.loads(text)
    except ValueError:
        raise CliError(f"{url} answered HTTP {status} with something that is not JSON", "is --server a bench?",
                       code=1) from None


def _refused(status: int, answer: Any, device: str) -> CliError:
    message = answer.get("error") if isinstance(answer, dict) else None
    message = message or f"HTTP {status}"
    if status == 401:
        return CliError(message, TOKEN_HINT,
                        code=1)
    if status == 404:
        return CliError(message, f"check that {device} runs with a control URL pointing at this bench", code=1)
    return CliError(message, code=1 if status >= 500 else 2)


def _write_out(reply: dict, out: str) -> int:
    body = reply.get("body")
    try:
        data = base64.b64decode(body if isinstance(body, str) else "\0", validate=True)
    except (binascii.Error, ValueError):
        raise CliError(f"the {reply.get('type')} reply's body is not base64, nothing written to {out}",
                       "--out is for replies that carry a file (file/get, script/get, screen/snapshot)",
                       code=1) from None
    try:
        Path(out).write_bytes(data)
    except OSError as e:
        raise CliError(f"cannot write --out {out}: {e.strerror or e}", "give a writable path") from None
    return len(data)


def add_parser(sub: argparse._SubParsersAction, parents: Parents) -> argparse.ArgumentParser:
    p = sub.add_parser("control", parents=[parents.server],
                       help="send a cloud-control request (app/state, file/get, ...) to a device and print its reply")
    p.add_argument("device")
    p.add_argument("type", help="request type, e.g. app/state, system/log/get, file/get, screen/snapshot")
    p.add_argument("body", nargs="?", help='request body as JSON, e.g. \'{"last": 20}\'')
    p.add_argument("--file", metavar="PATH", help="send PATH's bytes, base64, as the body's 'data' (file/put)")
    p.add_argument("--out", metavar="PATH", help="write the reply's base64 body, decoded, to PATH")
    p.add_argument("--timeout", type=positive, default=30.0,
                   help=f"seconds to wait for the reply (default %(default)s, at most {MAX_ANSWER_S:g})")
    add_token(p)
    p.set_defaults(handler=run)
    return p


def run(args: argparse.Namespace) -> int:
    problem = check_type(args.type)
    if problem:
        raise CliError(problem, "e.g. doorlink control DEVICE app/state")
    if args.timeout > MAX_ANSWER_S:
        raise CliError(f"--timeout is at most {MAX_ANSWER_S:g} seconds", f"--timeout {MAX_ANSWER_S:g}")
    url = api_url(args.server, args.device)
    message = {"type": args.type}
    body = _body(args.body, args.file)
    if body is not None:
        message["body"] = body
    status, answer = asyncio.run(request(url, message, args.timeout, args.token))
    if status != 200 or not isinstance(answer, dict):
        raise _refused(status, answer, args.device)
    if answer.get("error"):
        print(json.dumps(answer, indent=2, sort_keys=True))
        raise CliError(f"{args.device} answered {args.type} with an error: {answer['error']}", code=1)
    if args.out:
        size = _write_out(answer, args.out)
        print(f"{args.type}: wrote {size} bytes to {args.out}")
        return 0
    print(json.dumps(answer, indent=2, sort_keys=True))
    return 0
