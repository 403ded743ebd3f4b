# CloudSolution `cloudtime` sets the device clock: punches carry the cloud's
# time, and a large correction is reported. Per runtime.
import time

from aiohttp import web
from e2e_support import eventually
from test_terminal_bad_input import _run_agent, _serve

from agent import clock

AHEAD_S = 7200


async def test_cloudtime_corrects_punch_times(runtime, tmp_path):
    stored = []

    async def handler(request):
        body = await request.json()
        cloud_now = clock.local_iso(time.time() + AHEAD_S) + "Z"
        if body["cmd"] == "sendlog":
            stored.extend(body["record"])
            return web.json_response({"ret": "sendlog", "result": True, "count": body["count"],
                                      "logindex": body["logindex"], "cloudtime": cloud_now})
        return web.json_response({"ret": body["cmd"], "result": True, "cloudtime": cloud_now})

    app = web.Application()
    app.router.add_post("/api/device-http", handler)
    runner, port = await _serve(app)
    lines = []
    session = await _run_agent(runtime, tmp_path, "http://127.0.0.1:%d" % port, "http", lines)
    try:
        await eventually(lambda: stored, timeout=30)
        punched = clock.parse_iso(stored[0]["time"])  # site gmt 0: the wall clock is UTC
        assert abs(punched - (time.time() + AHEAD_S)) < 30, stored[0]
        assert "corrected" in "\n".join(lines)
    finally:
        await session.stop()
        await runner.cleanup()
