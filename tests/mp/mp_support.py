# Helpers for MicroPython test modules (tests/mp/test_*.py): reaching the
# host services their fixtures started, from inside MicroPython.
import asyncio
import json

from agent.codecs import http11
from agent.codecs.url import split_hostport, split_url


async def get_json(url, ca_file=None, timeout=5):
    """GET url -> (status, the JSON body), over asyncio streams with the
    agent's own HTTP/1.1 codec; https:// verifies against ca_file."""
    scheme, host, port, path = split_url(url, ("http", "https"))
    if scheme == "https":
        from agent.hal.tls import client_context
        ctx = client_context(ca_file)
        opening = asyncio.open_connection(host, port, ssl=ctx, server_hostname=host)
    else:
        opening = asyncio.open_connection(host, port)
    reader, writer = await asyncio.wait_for(opening, timeout)
    try:
        writer.write(http11.request("GET", host, port, path, None, default_port=443 if scheme == "https" else 80))
        await writer.drain()
        resp = await asyncio.wait_for(_response(reader, http11.ResponseParser(max_body=1 << 20)), timeout)
    finally:
        writer.close()
        await writer.wait_closed()
    return resp.status, json.loads(resp.body)


async def _response(reader, parser):
    while True:
        data = await reader.read(2048)
        if not data:
            return parser.eof()
        resp = parser.feed(data)
        if resp is not None:
            return resp


async def records(base_url, device_id, kind, ca_file=None):
    """What the bench stored from device_id: its rows of `kind` (punch,
    event, telemetry, admin_log), read from GET /api/records."""
    status, rows = await get_json("%s/api/records/%s?kind=%s" % (base_url, device_id, kind), ca_file)
    assert status == 200, (status, rows)
    return rows


class Control:
    """The reader emulator's control port (host_tools/emulate.py): one
    command line out, one answer line back."""

    def __init__(self, reader, writer):
        self._reader, self._writer = reader, writer

    @classmethod
    async def open(cls, address, timeout=5):
        host, port = split_hostport(address, 0)
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        return cls(reader, writer)

    async def send(self, line, timeout=5):
        self._writer.write((line + "\n").encode())
        await self._writer.drain()
        answer = (await asyncio.wait_for(self._reader.readline(), timeout)).decode().strip()
        assert not answer.startswith("error"), (line, answer)
        return answer

    async def answered(self, code, confirm=None):
        """How many commands `code` the module answered (with `confirm`)."""
        return int(await self.send("answered %d" % code + ("" if confirm is None else " %d" % confirm)))

    async def wait_answered(self, code, count, confirm=None, timeout=15):
        """Until `count` commands `code` were answered (polled, bounded)."""
        for _ in range(int(timeout / 0.02)):
            if await self.answered(code, confirm) >= count:
                return
            await asyncio.sleep(0.02)
        raise AssertionError("command 0x%02x not answered %d times within %ss" % (code, count, timeout))

    async def close(self):
        self._writer.close()
        await self._writer.wait_closed()
