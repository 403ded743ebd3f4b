# The agent's HttpClient inside MicroPython against the real bench over
# https (BENCH_TLS: the bench serves the `pki` fixture's certificate, made
# out to "localhost"): the right CA, a wrong CA, no CA.
from test_http_transport import assert_round_trip, round_trip

SN = "ZX00000443"
WS_DEVICE = "door-wss-1"
WS_TOKEN = "tok_wss_1"
BENCH_DEVICES = {SN: "unused", WS_DEVICE: WS_TOKEN}
BENCH_TLS = True


async def test_micropython_https_right_and_wrong_ca(bench, pki):
    url = "https://localhost:%d" % bench["port"]
    await assert_round_trip(await round_trip(url, SN, pki["ca"]), url, SN, pki["ca"])
    res = await round_trip(url, SN, pki["wrong"])
    assert "reg" not in res and res["error"].startswith("connect to %s failed" % url), res
    assert "certificate" in res["error"], res
    res = await round_trip(url, SN)
    assert res["error"] == "a ca_file is required for TLS on MicroPython (no system CA store)"


def _fds():
    import gc
    import os
    gc.collect()
    return len(os.listdir("/proc/self/fd"))


async def test_failed_tls_connects_leave_no_socket(bench, pki, garbage_port, silent_port):
    # asyncio's own TLS opening on MicroPython kept the TCP socket of every
    # failed handshake: a wrong CA, a server that is not TLS, one that never
    # answers. Ten reconnects each must give every socket back.
    from agent.errors import LinkClosed
    from agent.transports import websocket
    from agent.transports.http import HttpClient
    tries = [("wss://localhost:%d/ws" % bench["port"], pki["wrong"], "certificate"),
             ("wss://127.0.0.1:%d/ws" % garbage_port, pki["ca"], "failed"),
             ("wss://127.0.0.1:%d/ws" % silent_port, pki["ca"], "timed out")]
    before = _fds()
    for url, ca, said in tries:
        for _ in range(10):
            try:
                await websocket.connect(url, 4096, 0.5, 5, ca)
            except LinkClosed as e:
                assert said in str(e), (url, str(e))
            else:
                raise AssertionError("connected to %s" % url)
        client = HttpClient(url.replace("wss", "https").replace("/ws", ""), 0.5, ca_file=ca)
        for _ in range(10):
            try:
                await client.post_json("/api/device-http", {"cmd": "reg"})
            except LinkClosed:
                pass
        await client.close()
    assert _fds() == before, (before, _fds())


async def test_tls_records_that_arrive_in_pieces_are_read_whole(bench, pki, slow_port):
    # A record split across TCP segments: MicroPython's readinto() says
    # None until the rest arrives, which once read as the server hanging up.
    from agent.transports import websocket
    conn = await websocket.connect("wss://localhost:%d/ws" % slow_port, 4096, 20, 10, pki["ca"])
    try:
        await conn.send('{"type": "register", "device_id": "%s", "token": "%s"}' % (WS_DEVICE, WS_TOKEN))
        reply = await conn.recv()
        assert '"registered"' in reply, reply
        await conn.send('{"type": "ping"}')
        assert '"pong"' in await conn.recv()
    finally:
        await conn.close()
