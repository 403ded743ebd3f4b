"""The dashboard's routes on a real bench (127.0.0.1), without a browser
(tests/e2e/test_dashboard_browser.py drives one): the page and its files
come with the Content-Security-Policy, every file the page names is
served, nothing outside the static folder is, the login answers exactly
what the admin API lets in (a token where admins need one, never one in
the URL), and a foreign origin is refused here as everywhere."""

import asyncio
import re

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from host_tools.bench import dashboard, start_bench
from host_tools.bench.hub import ANONYMOUS

ADMIN = "ops"
ADMIN_TOKEN = "adm_dash_0123456789abcdef"
TIMEOUT = 5


@pytest.fixture
async def make_bench(tmp_path):
    started = []

    async def make(**options):
        b = await start_bench("127.0.0.1", 0, str(tmp_path / f"b{len(started)}.sqlite3"), **options)
        started.append(b)
        b.store.add_admin(ADMIN, ADMIN_TOKEN)
        return b

    yield make
    for b in started:
        await asyncio.wait_for(b.stop(), TIMEOUT)


async def _get(url, **kw):
    async with aiohttp.ClientSession() as http, http.get(url, allow_redirects=False, **kw) as r:
        return r.status, dict(r.headers), await r.read()


async def _login(url, token=None, **kw):
    headers = kw.pop("headers", {})
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    async with aiohttp.ClientSession() as http, http.post(url + "/api/login", headers=headers, **kw) as r:
        return r.status, await r.json() if r.content_type == "application/json" else await r.text()


async def test_the_page_and_its_files_come_with_the_csp(make_bench):
    bench = await make_bench()
    status, headers, body = await _get(bench.http_url + "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert headers["Content-Security-Policy"] == dashboard.CSP
    assert "script-src 'self';" in dashboard.CSP and "'unsafe-inline'" not in dashboard.CSP
    assert headers["X-Content-Type-Options"] == "nosniff" and headers["X-Frame-Options"] == "DENY"
    page = body.decode()
    # No inline script or event handler (the CSP would refuse them anyway).
    assert not re.search(r"<script[^>]*>\s*[^<\s]", page)
    assert not re.search(r"\son[a-z]+\s*=", page, re.IGNORECASE)
    named = re.findall(r'(?:src|href)="(/static/[^"]+)"', page)
    assert {"/static/dashboard.js", "/static/dashboard.css"} <= set(named)
    for path in named:
        status, headers, content = await _get(bench.http_url + path)
        assert status == 200, path
        assert headers["Content-Security-Policy"] == dashboard.CSP and headers["X-Content-Type-Options"] == "nosniff"
        assert content == (dashboard.STATIC_DIR / path.rsplit("/", 1)[1]).read_bytes()
    _, headers, _ = await _get(bench.http_url + "/static/dashboard.js")
    assert headers["Content-Type"].startswith("text/javascript")
    # The script writes text only, never markup, and keeps the token out of URLs.
    script = (dashboard.STATIC_DIR / "dashboard.js").read_text()
    assert "innerHTML" not in script and "outerHTML" not in script and "insertAdjacentHTML" not in script
    assert "document.write" not in script and "eval(" not in script


async def _raw_get(port, path):
    """GET `path` exactly as written (an HTTP client would normalise the
    dots away): (status, body)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        reply = await asyncio.wait_for(reader.read(1 << 20), TIMEOUT)
    finally:
        writer.close()
    head, _, body = reply.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


@pytest.mark.parametrize("path", [
    "/static/../app.py", "/static/..%2fapp.py", "/static/%2e%2e%2fapp.py", "/static/..%5capp.py",
    "/static/%2e%2e/%2e%2e/pyproject.toml", "/static/../../../../etc/passwd", "/static/dashboard.py",
    "/static/.", "/static/", "/static/index.html%00.js", "/static//etc/passwd", "/static/%2fetc%2fpasswd",
    "/static/..", "/static/./dashboard.js/..%2f..%2fapp.py",
])
async def test_nothing_outside_the_static_files_is_served(make_bench, path):
    bench = await make_bench()
    status, body = await _raw_get(bench.port, path)
    assert status in (400, 403, 404), (path, status, body[:200])
    assert b"import" not in body and b"root:" not in body


async def test_only_plain_files_of_known_kinds_are_served(tmp_path):
    folder = tmp_path / "static"
    folder.mkdir()
    (folder / "index.html").write_text("<!doctype html><title>x</title>")
    (folder / "app.js").write_text("'use strict';")
    (folder / "notes.txt").write_text("secret")
    (folder / ".hidden.js").write_text("hidden")
    (folder / "big.js").write_bytes(b" " * (dashboard.MAX_STATIC_BYTES + 1))
    (tmp_path / "outside.js").write_text("outside")
    (folder / "link.js").symlink_to(tmp_path / "outside.js")
    assert set(dashboard.load_static(folder)) == {"index.html", "app.js", "link.js"}

    async def nobody(_request):
        raise web.HTTPUnauthorized()

    app = web.Application()
    dashboard.add_routes(app, nobody, folder)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        base = str(server.make_url(""))
        assert (await _get(base + "/static/app.js"))[0] == 200
        for name in ("notes.txt", ".hidden.js", "big.js", "missing.js"):
            assert (await _get(base + "/static/" + name))[0] == 404, name
        status, _ = await _login(base)
        assert status == 401
    finally:
        await server.close()
    (folder / "index.html").unlink()
    with pytest.raises(RuntimeError, match="index.html is missing"):
        dashboard.add_routes(web.Application(), nobody, folder)


async def test_login_needs_an_admin_token_where_admins_need_one(make_bench):
    protected = await make_bench(require_auth=True)   # as a bench beyond loopback is
    url = protected.http_url
    assert await _login(url) == (401, {"error": "admin token required: Authorization: Bearer TOKEN"})
    assert (await _login(url, "adm_wrong_0123456789abcdef"))[0] == 401
    # A token in the URL is no login: the page never puts it there, the bench never reads it.
    assert (await _login(url, params={"token": ADMIN_TOKEN}))[0] == 401
    assert (await _login(url, headers={"Authorization": f"Basic {ADMIN_TOKEN}"}))[0] == 401
    assert await _login(url, ADMIN_TOKEN) == (200, {"admin": ADMIN})
    assert protected.hub.errors["auth"] == 4
    # The page itself holds no data: served to anyone, as the login form.
    assert (await _get(url + "/"))[0] == 200

    loopback = await make_bench()   # lets admins in without a token, as the admin API does
    assert await _login(loopback.http_url) == (200, {"admin": ANONYMOUS})
    assert await _login(loopback.http_url, ADMIN_TOKEN) == (200, {"admin": ADMIN})
    assert (await _login(loopback.http_url, "adm_wrong_0123456789abcdef"))[0] == 401


async def test_a_foreign_origin_is_refused_and_the_own_one_let_in(make_bench):
    bench = await make_bench(require_auth=True)
    own = f"http://127.0.0.1:{bench.port}"
    assert await _login(bench.http_url, ADMIN_TOKEN, headers={"Origin": own}) == (200, {"admin": ADMIN})
    status, _ = await _login(bench.http_url, ADMIN_TOKEN, headers={"Origin": "http://evil.example"})
    assert status == 403
    assert (await _get(bench.http_url + "/", headers={"Origin": "http://evil.example"}))[0] == 403
    # The page's own WebSocket, from its own origin, subscribes with the token.
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(bench.url, headers={"Origin": own}) as ws:
            await ws.send_json({"type": "subscribe", "role": "admin", "token": ADMIN_TOKEN})
            await ws.send_json({"type": "ping"})
            assert (await ws.receive_json(timeout=TIMEOUT)) == {"type": "pong"}
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(bench.url, headers={"Origin": "http://evil.example"})
        assert refused.value.status == 403


async def test_a_page_on_a_rebound_name_is_refused_where_no_token_is_needed(make_bench):
    bench = await make_bench()   # anonymous admins: only loopback names may address it
    status, _, _ = await _get(bench.http_url + "/", headers={"Host": f"evil.example:{bench.port}"})
    assert status == 403
    status, _ = await _login(bench.http_url, headers={"Host": f"evil.example:{bench.port}"})
    assert status == 403
