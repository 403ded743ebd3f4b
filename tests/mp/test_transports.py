# The transports inside MicroPython, where sockets are few (an ESP32 has
# about ten): a link that never comes up, or that is dropped mid-request,
# must give its socket back. On MicroPython a stream's close() alone does
# not (agent.hal.drop_stream says why).
import asyncio
import gc
import os

from agent.errors import LinkClosed
from agent.transports import websocket
from agent.transports.http import HttpClient


def _fds():
    gc.collect()
    return len(os.listdir("/proc/self/fd"))


async def test_a_websocket_handshake_that_never_comes_leaves_no_socket(silent_port):
    before = _fds()
    for _ in range(10):
        try:
            await websocket.connect("ws://127.0.0.1:%d/ws" % silent_port, 4096, 0.2)
        except LinkClosed as e:
            assert "timed out" in str(e)
        else:
            raise AssertionError("a silent server registered us")
    await asyncio.sleep(0.05)
    assert _fds() == before, (before, _fds())


async def test_an_http_request_that_never_gets_an_answer_leaves_no_socket(silent_port):
    before = _fds()
    client = HttpClient("http://127.0.0.1:%d" % silent_port, 0.2)
    for _ in range(10):
        try:
            await client.post_json("/api/device-http", {"cmd": "checklive"})
        except LinkClosed as e:
            assert "no reply" in str(e)
        else:
            raise AssertionError("a silent server answered")
    await client.close()
    await asyncio.sleep(0.05)
    assert _fds() == before, (before, _fds())
