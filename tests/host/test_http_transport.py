"""The agent's HttpClient (CPython) against the real bench and against
servers that misbehave: 5xx, non-JSON, silence, TLS with the right and a wrong CA."""

import asyncio

import pytest
from aiohttp import web

from agent.codecs import cloudsolution as cs
from agent.errors import LinkClosed
from agent.transports.http import HttpClient

SN = "ZX12345678"
TOKEN = "tok_http_transport"
PATH = "/api/device-http"
BENCH_DEVICES = {SN: TOKEN}  # registered in the shared bench fixture
DEVINFO = {"modelname": "doorlink", "usersize": 1000, "firmware": "0.1.0", "mac": "00:11:22:33:44:55"}


def checklive(time_text):
    return {"cmd": "checklive", "sn": SN, "time": time_text, "token": TOKEN}


def reg():
    return cs.Session(SN, 0, DEVINFO, TOKEN).hello()


class CountingProxy:
    """TCP pass-through that counts the connections it is asked for."""

    def __init__(self, port):
        self.port = port
        self.connections = 0
        self.tasks = set()

    async def start(self):
        self.server = await asyncio.start_server(self._conn, "127.0.0.1", 0)
        self.url = "http://127.0.0.1:%d" % self.server.sockets[0].getsockname()[1]
        return self

    async def _conn(self, reader, writer):
        self.connections += 1
        up_r, up_w = await asyncio.open_connection("127.0.0.1", self.port)

        async def pipe(r, w):
            try:
                while data := await r.read(65536):
                    w.write(data)
                    await w.drain()
            except OSError:
                pass
            finally:
                w.close()
        await asyncio.gather(pipe(reader, up_w), pipe(up_r, writer))

    async def stop(self):
        self.server.close()


async def test_reg_sendlog_checklive_round_trip(bench):
    client = HttpClient(bench.http_url, timeout=5)
    try:
        session = cs.Session(SN, 0, DEVINFO, TOKEN)
        status, obj, raw = await client.post_json(PATH, session.hello())
        assert status == 200 and raw.startswith(b"{")
        reply = session.reply("reg", obj)
        assert reply.ok and reply.nosenduser is True and reply.cloudtime is not None

        recs = [[5, 1781255730, "punch", "1", {"user": "1", "time": "2026-06-12T09:15:30", "action": "FP"}],
                [6, 1781255731, "event", "door_opened", {"door": "front"}]]
        status, obj, _ = await client.post_json(PATH, session.sendlog(recs))
        reply = session.reply("sendlog", obj)
        assert cs.acked_upto(reply, 5, 2) == 6 and reply.access == 1

        status, obj, _ = await client.post_json(PATH, session.ping(1781255800))
        assert session.reply("checklive", obj).ok
    finally:
        await client.close()
    assert [r["log_id"] for r in bench.store.punch_rows(SN)] == ["5"]
    assert [(e["event_type"], e["record_id"]) for e in bench.store.event_rows(SN)] == [("door_opened", 6)]


async def test_bad_request_reply_is_returned_not_raised(bench):
    client = HttpClient(bench.http_url, timeout=5)
    try:
        status, obj, _ = await client.post_json(PATH, {"cmd": "launch", "sn": SN})
        assert status == 400 and obj["result"] is False and "unknown cmd" in obj["reason"]
        # the link survives a 400: the next request goes through
        status, obj, _ = await client.post_json(PATH, checklive("2026-06-12T09:30:00"))
        assert status == 200 and obj["result"] is True
    finally:
        await client.close()


async def test_keep_alive_reuses_one_connection(bench):
    proxy = await CountingProxy(bench.port).start()
    client = HttpClient(proxy.url, timeout=5)
    try:
        for i in range(5):
            status, obj, _ = await client.post_json(PATH, checklive("2026-06-12T09:30:0%d" % i))
            assert status == 200 and obj["result"] is True
    finally:
        await client.close()
        await proxy.stop()
    assert proxy.connections == 1 and client.connections == 1


async def test_reconnects_after_the_server_drops_the_idle_connection(bench):
    proxy = await CountingProxy(bench.port).start()
    client = HttpClient(proxy.url, timeout=5)
    try:
        assert (await client.post_json(PATH, checklive("2026-06-12T09:30:00")))[0] == 200
        client._writer.transport.abort()  # the link dies while idle
        assert (await client.post_json(PATH, checklive("2026-06-12T09:30:01")))[0] == 200
    finally:
        await client.close()
        await proxy.stop()
    assert proxy.connections == 2


async def _serve(handler):
    app = web.Application()
    app.router.add_post(PATH, handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, "http://127.0.0.1:%d" % site._server.sockets[0].getsockname()[1]


async def test_http_500_is_link_closed():
    async def handler(request):
        return web.Response(status=500, text="Internal Server Error")
    runner, url = await _serve(handler)
    client = HttpClient(url, timeout=5)
    try:
        with pytest.raises(LinkClosed, match="HTTP 500 from server"):
            await client.post_json(PATH, checklive("x"))
    finally:
        await client.close()
        await runner.cleanup()


async def test_non_json_reply_is_link_closed():
    async def handler(request):
        return web.Response(text="<html>hello</html>", content_type="text/html")
    runner, url = await _serve(handler)
    client = HttpClient(url, timeout=5)
    try:
        with pytest.raises(LinkClosed, match="reply is not JSON: HTTP 200 b'<html>hello"):
            await client.post_json(PATH, checklive("x"))
    finally:
        await client.close()
        await runner.cleanup()


async def test_garbage_bytes_are_link_closed():
    async def garbage(reader, writer):
        await reader.read(1000)
        writer.write(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
        await writer.drain()
        writer.close()
    server = await asyncio.start_server(garbage, "127.0.0.1", 0)
    client = HttpClient("http://127.0.0.1:%d" % server.sockets[0].getsockname()[1], timeout=5)
    try:
        with pytest.raises(LinkClosed, match="bad HTTP reply .*malformed status line"):
            await client.post_json(PATH, checklive("x"))
    finally:
        await client.close()
        server.close()


async def test_silent_server_is_link_closed_after_the_deadline():
    held = []

    async def silent(reader, writer):
        held.append(writer)
        await asyncio.sleep(30)
    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    client = HttpClient("http://127.0.0.1:%d" % server.sockets[0].getsockname()[1], timeout=0.5)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    try:
        with pytest.raises(LinkClosed, match=r"no reply from http://127.0.0.1:\d+ within 0.5s"):
            await client.post_json(PATH, checklive("x"))
        assert 0.4 < loop.time() - t0 < 3
    finally:
        await client.close()
        for w in held:
            w.close()
        server.close()


async def test_refused_connection_is_link_closed():
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    client = HttpClient("http://127.0.0.1:%d" % port, timeout=2)
    with pytest.raises(LinkClosed, match="connect to http://127.0.0.1:%d failed" % port):
        await client.post_json(PATH, checklive("x"))


@pytest.fixture
async def tls_bench(rig, pki):
    """The rig's bench, serving TLS with the throwaway CA's certificate."""
    b = await rig.start_bench(ssl_context=pki["server"])
    b.store.add_device(SN, TOKEN)
    return b


async def test_https_with_the_right_ca(tls_bench, pki):
    # The certificate names "localhost": the host name is verified too.
    client = HttpClient("https://localhost:%d" % tls_bench.port, timeout=5, ca_file=pki["ca"])
    try:
        status, obj, _ = await client.post_json(PATH, reg())
        assert status == 200 and cs.parse_reply(obj, "reg").ok
        status, obj, _ = await client.post_json(PATH, checklive("2026-06-12T09:30:00"))
        assert obj["result"] is True and client.connections == 1
    finally:
        await client.close()


async def test_https_with_a_wrong_ca_fails(tls_bench, pki):
    client = HttpClient("https://localhost:%d" % tls_bench.port, timeout=5, ca_file=pki["wrong"])
    with pytest.raises(LinkClosed, match="certificate verify failed"):
        await client.post_json(PATH, reg())
    client = HttpClient("https://localhost:%d" % tls_bench.port, timeout=5, ca_file="/nonexistent/ca.pem")
    with pytest.raises(LinkClosed, match="cannot load ca_file /nonexistent/ca.pem"):
        await client.post_json(PATH, reg())
