# CloudSolution `cloudtime` sets the device clock: punches carry the cloud's
# time, and a large correction is reported. Per runtime.
import time

from aiohttp import web

from agent.codecs.values import epoch_wall, wall_epoch

from e2e_support import eventually
from test_terminal_bad_input import _serve, punch_once, terminal

AHEAD_S = 7200


async def test_cloudtime_corrects_punch_times(runtime, tmp_path):
    stored = []

    async def handler(request):
        body = await request.json()
        cloud_now = epoch_wall(time.time() + AHEAD_S) + "Z"
        if body["cmd"] == "sendlog":
            stored.extend(body["record"])
            return web.json_response({"ret": "sendlog", "result": True, "count": body["count"],
                                      "logindex": body["logindex"], "cloudtime": cloud_now})
        return web.json_response({"ret": body["cmd"], "result": True, "cloudtime": cloud_now})

    app = web.Application()
    app.router.add_post("/api/device-http", handler)
    runner, port = await _serve(app)
    rig = terminal(runtime, tmp_path, "http")
    try:
        await punch_once(rig, "http://127.0.0.1:%d" % port)
        await eventually(lambda: stored, timeout=30)
        punched = wall_epoch(stored[0]["time"])  # site gmt 0: the wall clock is UTC
        assert abs(punched - (time.time() + AHEAD_S)) < 30, stored[0]
        await eventually(lambda: "corrected" in rig.output(), timeout=10)   # stdout can lag the socket
    finally:
        await rig.stop()
        await runner.cleanup()
