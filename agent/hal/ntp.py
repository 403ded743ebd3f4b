# SNTP (RFC 4330): the time from an NTP server, for an ESP32 no cloud gives
# the time to (agent/hal/wifi.py asks). Not micropython-lib's ntptime: it
# waits for the answer in a blocking recv (its timeout, 1 s), and with the
# internet down every try would freeze the whole board - the door's task
# too, and an exit button must never wait that long. Here the socket is
# non-blocking and the event loop runs while the answer is awaited.
#
# The server's name is resolved once and its address kept: name lookups
# block on every runtime this agent has, so a failing one is retried only
# as often as the caller's backoff allows.
#
# A reply is believed only if it answers our request: server mode, a
# stratum 1-15 (0 is a "kiss of death"), and our random transmit stamp
# echoed as its originate stamp (an off-path forger cannot guess it).
import asyncio
import os
import socket

from agent import log
from agent.hal import ticks_diff, ticks_ms

PORT = 123
WAIT_MS = 1000
POLL_MS = 20
_NTP_TO_UNIX = 2208988800     # 1900-01-01 to 1970-01-01, in seconds
_ERA_PIVOT = 3913056000       # 2024-01-01 in NTP seconds: a stamp below it is past the 2036 wrap
_EAGAIN = (11, 110)           # nothing received yet (lwIP says ETIMEDOUT on a non-blocking socket)
_addresses = {}


def request(nonce):
    """A client request (version 4, mode 3) carrying `nonce` (8 bytes) as its transmit stamp."""
    req = bytearray(48)
    req[0] = 0x23
    req[40:48] = nonce
    return req


def answer(data, nonce):
    """Unix seconds from a reply to the request that carried `nonce`, or
    None when it is not one."""
    if len(data) < 48 or data[0] & 7 != 4 or not 1 <= data[1] <= 15 or data[24:32] != nonce:
        return None
    secs = int.from_bytes(data[40:44], "big")
    if secs < _ERA_PIVOT:
        secs += 1 << 32
    return secs - _NTP_TO_UNIX


def _address(host, port):
    key = (host, port)
    addr = _addresses.get(key)
    if addr is None:
        addr = socket.getaddrinfo(host, port, 0, socket.SOCK_DGRAM)[0][-1]
        _addresses[key] = addr
    return addr


async def query(host, port=PORT, wait_ms=WAIT_MS):
    """The server's time, Unix seconds; OSError when it gives none in time."""
    addr = _address(host, port)
    nonce = os.urandom(8)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        sock.sendto(request(nonce), addr)
        start = ticks_ms()
        while ticks_diff(ticks_ms(), start) < wait_ms:
            try:
                data = sock.recv(64)
            except OSError as e:
                if e.args[0] not in _EAGAIN:
                    raise
                await asyncio.sleep(POLL_MS / 1000)
                continue
            epoch = answer(data, nonce)
            if epoch is not None:
                return epoch
            log.count("ntp_bad_replies")
        raise OSError("no answer from %s:%d within %d ms" % (host, port, wait_ms))
    finally:
        sock.close()
