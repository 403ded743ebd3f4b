"""The bench's browser dashboard: `GET /` (the page), `GET /static/NAME`
(its script and style, files of host_tools/bench/static/) and
`POST /api/login` (who an admin token belongs to).

The page is plain HTML, CSS and JS with no build step: it holds no data, so
it is served to anyone; everything it shows comes from the admin API and
the admin JSON protocol on `/ws`, which check the admin as they do for any
other client (app.py's `_admin_api`, json_ws's subscribe). The login page
asks for the admin token and the script keeps it in the tab's
sessionStorage: it goes as `Authorization: Bearer` on fetches and in the
`subscribe` message on the WebSocket, never in a URL. No cookie: a page of
another site cannot make the browser send the token (and app.py refuses
foreign Origins anyway).

Every response of the dashboard carries a Content-Security-Policy that
lets the page load only the bench's own script and style, connect only to
the bench (fetch and its WebSocket), show images only from itself or from
data: URLs (the screen snapshot), and run no inline script: what a hostile
device id or payload might smuggle in as markup has nothing to run with
(and the script inserts text only, never HTML).

Static files are read once, when the app is built: only names present in
the folder are served (a fixed table), so no request path can reach
another file.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

STATIC_DIR = Path(__file__).with_name("static")
INDEX = "index.html"
LOGIN_PATH = "/api/login"
MAX_STATIC_BYTES = 1 << 20   # a file bigger than this is a packaging accident, not a page

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    # The page changes with the bench's version; nothing here is worth a stale copy.
    "Cache-Control": "no-cache",
}
_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml",
          ".png": "image/png"}
_NAME = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9]+)+$")

# The app's admin check: raises the HTTP error (401) for a request that
# may not use the admin API, else returns the admin's name.
AdminCheck = Callable[[web.Request], Awaitable[str]]


def load_static(folder: Path = STATIC_DIR) -> dict[str, tuple[bytes, str]]:
    """name -> (content, content type) of the servable files of `folder`:
    plain files with a known extension and a plain name."""
    files = {}
    for path in sorted(folder.iterdir()) if folder.is_dir() else ():
        ctype = _TYPES.get(path.suffix)
        if ctype and _NAME.match(path.name) and path.is_file() and path.stat().st_size <= MAX_STATIC_BYTES:
            files[path.name] = (path.read_bytes(), ctype)
    return files


def _file(files: dict[str, tuple[bytes, str]], name: str) -> web.Response:
    found = files.get(name)
    if found is None:
        raise web.HTTPNotFound(text="no such file", headers=HEADERS)
    body, ctype = found
    return web.Response(body=body, content_type=ctype, charset="utf-8" if ctype.startswith("text/") else None,
                        headers=HEADERS)


def add_routes(app: web.Application, admin_check: AdminCheck, folder: Path = STATIC_DIR) -> None:
    """The dashboard's routes on `app`; `admin_check` is how the app's API
    checks an admin (the login answers exactly what the API will let in)."""
    files = load_static(folder)
    if INDEX not in files:
        raise RuntimeError(f"the dashboard's {INDEX} is missing from {folder}: a broken install "
                           "(host_tools/bench/static/ is package data, see pyproject.toml)")

    async def index(_request: web.Request) -> web.Response:
        return _file(files, INDEX)

    async def static(request: web.Request) -> web.Response:
        return _file(files, request.match_info["name"])

    async def login(request: web.Request) -> web.Response:
        """`Authorization: Bearer TOKEN` (or none, where anonymous admins
        are let in) -> {"admin": NAME}; a 401 otherwise."""
        return web.json_response({"admin": await admin_check(request)}, headers={"Cache-Control": "no-store"})

    app.router.add_get("/", index)
    app.router.add_get("/static/{name}", static)
    app.router.add_post(LOGIN_PATH, login)
