# The SNTP client (agent/hal/ntp.py) against a real UDP server on
# 127.0.0.1 run by the test itself, on both runtimes: what it believes,
# what it refuses, and that the event loop keeps running while it waits.
import asyncio
import os
import socket

from agent import log
from agent.hal import ntp

NOW = 1767225600           # 2026-01-01T00:00:00Z
NTP_NOW = NOW + 2208988800


def _bind():
    """A UDP socket on 127.0.0.1 at a free port -> (socket, port). MicroPython
    has no getsockname, so ports are tried (a bounded number of them)."""
    for _ in range(50):
        port = 20000 + int.from_bytes(os.urandom(2), "big") % 40000
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.bind(socket.getaddrinfo("127.0.0.1", port, 0, socket.SOCK_DGRAM)[0][-1])
        except OSError:
            sock.close()
            continue
        sock.setblocking(False)
        return sock, port
    raise AssertionError("no free UDP port in 50 tries")


def _reply(req, secs, stratum=2, echo=True):
    rep = bytearray(48)
    rep[0] = 0x24   # version 4, server mode
    rep[1] = stratum
    if echo:
        rep[24:32] = req[40:48]
    rep[40:44] = (secs & 0xFFFFFFFF).to_bytes(4, "big")
    return rep


async def _serve(sock, replies):
    """Answer each request with the replies made by the functions in
    `replies` (one list of them per request); stop when they run out."""
    for _ in range(500):
        if not replies:
            return
        try:
            req, addr = sock.recvfrom(64)
        except OSError:
            await asyncio.sleep(0.005)
            continue
        for make in replies.pop(0):
            sock.sendto(make(req), addr)


def _run(coro):
    return asyncio.run(coro)


def test_the_time_is_taken_from_a_reply_that_answers_the_request():
    async def main():
        sock, port = _bind()
        try:
            # A forged reply first (not echoing our stamp), then a kiss of
            # death, then the real answer: only the last is believed.
            replies = [[lambda q: _reply(q, NTP_NOW - 999, echo=False), lambda q: _reply(q, NTP_NOW - 5, stratum=0),
                        lambda q: _reply(q, NTP_NOW)]]
            server = asyncio.create_task(_serve(sock, replies))
            before = log.counters.get("ntp_bad_replies", 0)
            assert await ntp.query("127.0.0.1", port) == NOW
            assert log.counters["ntp_bad_replies"] == before + 2
            await server
        finally:
            sock.close()
    _run(main())


def test_a_silent_server_gives_an_error_and_the_loop_runs_meanwhile():
    async def main():
        sock, port = _bind()   # bound, never answering: a blackholed server
        ticks = [0]

        async def ticker():
            while True:
                ticks[0] += 1
                await asyncio.sleep(0.01)

        t = asyncio.create_task(ticker())
        try:
            await ntp.query("127.0.0.1", port, wait_ms=300)
        except OSError as e:
            assert "no answer" in str(e)
        else:
            raise AssertionError("a silent server gave a time")
        finally:
            t.cancel()
            sock.close()
        # A blocking wait would have let the ticker run once at most.
        assert ticks[0] >= 5, ticks[0]
    _run(main())


def test_replies_are_parsed_with_care():
    nonce = b"12345678"
    req = ntp.request(nonce)
    assert len(req) == 48 and req[0] & 7 == 3 and bytes(req[40:48]) == nonce
    assert ntp.answer(_reply(req, NTP_NOW), nonce) == NOW
    assert ntp.answer(_reply(req, NTP_NOW)[:47], nonce) is None      # short
    assert ntp.answer(_reply(req, NTP_NOW, stratum=16), nonce) is None
    client_mode = _reply(req, NTP_NOW)
    client_mode[0] = 0x23
    assert ntp.answer(client_mode, nonce) is None
    # After the NTP era wraps (2036-02-07) seconds start again from 0.
    wrapped = NTP_NOW + (80 << 24) * 3   # some years past 2036
    assert ntp.answer(_reply(req, wrapped), nonce) == wrapped - 2208988800
