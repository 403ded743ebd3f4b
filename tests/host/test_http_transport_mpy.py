"""The agent's HttpClient under MicroPython (tests/mp/http_check.py) against
the real bench, over http and over https with a trustme CA."""

import asyncio
import json

from host_tools import mpy
from host_tools.bench import add_device, start_bench
from host_tools.paths import ROOT

SN = "ZX12345678"


async def run_check(url, ca_file=None):
    args = [mpy.tool("micropython"), "tests/mp/http_check.py", url, SN] + ([ca_file] if ca_file else [])
    proc = await asyncio.create_subprocess_exec(*args, cwd=ROOT, env=mpy.micropython_env(ROOT),
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, (out + err).decode()[-2000:]
    return json.loads(out.decode().strip().splitlines()[-1])


async def _bench(tmp_path, **kw):
    db = tmp_path / "bench.sqlite3"
    add_device(db, SN, "unused")
    return await start_bench("127.0.0.1", 0, str(db), **kw)


def _assert_round_trip(res, bench):
    assert "error" not in res, res
    assert res["reg"] == {"status": 200, "ok": True, "cloudtime": res["reg"]["cloudtime"], "nosenduser": True}
    assert isinstance(res["reg"]["cloudtime"], int)
    assert res["sendlog"] == {"status": 200, "ok": True, "acked_upto": 22, "access": 1}
    assert res["checklive"] == {"status": 200, "ok": True}
    assert res["connections"] == 1  # one keep-alive connection for all three
    assert [(r["log_id"], r["user_id"]) for r in bench.store.punch_rows(SN)] == [("21", "42")]
    assert [(e["event_type"], e["record_id"]) for e in bench.store.event_rows(SN)] == [("exit_button", 22)]


async def test_micropython_http_round_trip(tmp_path):
    bench = await _bench(tmp_path)
    try:
        _assert_round_trip(await run_check(bench.http_url), bench)
    finally:
        await bench.stop()


async def test_micropython_refused_port(tmp_path):
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    res = await run_check("http://127.0.0.1:%d" % port)
    assert res["error"].startswith("connect to http://127.0.0.1:%d failed" % port), res


async def test_micropython_https_right_and_wrong_ca(tmp_path, pki):
    bench = await _bench(tmp_path, ssl_context=pki["server"])
    url = "https://localhost:%d" % bench.port
    try:
        _assert_round_trip(await run_check(url, pki["ca"]), bench)
        res = await run_check(url, pki["wrong"])
        assert "reg" not in res and res["error"].startswith("connect to %s failed" % url), res
        assert "certificate" in res["error"], res
        res = await run_check(url)
        assert res["error"] == "a ca_file is required for TLS on MicroPython (no system CA store)"
    finally:
        await bench.stop()
