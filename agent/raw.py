# Raw passthrough: the app APIs' raw frames (Gizwits c2s_raw, the developer
# center's RAW) reach the agent as the command "raw" {"data": base64, at
# most MAX_BYTES bytes}, and what the device has to say back goes out as the
# event "raw" {"data": base64}, which the bench forwards to the apps (s2c_raw,
# RAW-UPLINK).
#
# Today it is a loopback: the bytes come straight back as the event. A
# serial peripheral (an RS-485 door controller, a UART module) can take it
# over later: give Raw its own `send(data)` coroutine and call received()
# with what it reads.
import binascii

from agent.errors import CommandError
from agent.thing import TEXT

NAME = "raw"          # the command and the event
MAX_BYTES = 256
MAX_TEXT = (MAX_BYTES + 2) // 3 * 4   # 344 base64 characters
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def decode(text):
    """Standard base64 (padded) -> bytes; CommandError for anything else
    (binascii alone lets stray characters through on CPython)."""
    if not isinstance(text, str) or not text or len(text) % 4:
        raise CommandError("raw: 'data' must be base64 of 1-%d bytes (padded to a multiple of 4 characters)"
                           % MAX_BYTES)
    body = text.rstrip("=")
    if len(text) - len(body) > 2:
        raise CommandError("raw: 'data' has too much '=' padding")
    for c in body:
        if c not in _ALPHABET:
            raise CommandError("raw: 'data' holds a character base64 does not use")
    data = binascii.a2b_base64(text)
    if len(data) > MAX_BYTES:
        raise CommandError("raw: at most %d bytes, got %d" % (MAX_BYTES, len(data)))
    return data


def encode(data):
    return binascii.b2a_base64(data, newline=False).decode()


class Raw:
    __slots__ = ("thing", "send")

    def __init__(self, thing, send=None):
        self.thing = thing
        self.send = send    # async (bytes) -> None of a peripheral; None: loopback
        thing.command(NAME, self._command, {"data": (TEXT, MAX_TEXT)}, ("data",))

    async def _command(self, payload):
        data = decode(payload["data"])
        if self.send is not None:
            await self.send(data)
        elif not self.received(data):
            raise CommandError("raw: the answer could not be journaled")
        return {"bytes": len(data)}

    def received(self, data):
        """Bytes from the peripheral (or the loopback) -> the event "raw";
        False when it could not be kept."""
        return self.thing.emit(NAME, {"data": encode(data)}) is not False
