"""The Gizwits app WebSocket API's messages, without any I/O (seed 002;
docs/protocols/gizwits-app.md): a client's text in -> one named event, the
cloud's messages out -> text, and the raw frames of c2s_raw / s2c_raw
(`[0,0,0,3, varLen, 0,0, cmd] + data`, varLen the MQTT v3.1 "remaining
length" of 1 to 4 bytes).

`Codec.receive(text)` checks a message against the document (and the
session's state: logged in or not, p0_type) and returns an event; a message
it cannot take is an `Invalid(error_code, msg)` event, which the session
answers with s2c_invalid_msg. The session (gizwits.py) does the rest:
users, bindings, devices.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from . import strict_json

# -- error codes (s2c_invalid_msg); the bench's own table, docs/protocols/gizwits-app.md ------------
MALFORMED_JSON = 1001      # not JSON, or not a JSON object with a string "cmd"
UNKNOWN_CMD = 1002         # a cmd the API does not have
BAD_FIELD = 1003           # a field missing or of the wrong type
LOGIN_FAILED = 1004        # wrong appid, uid or token (after login_res success false)
NOT_LOGGED_IN = 1009       # anything but login_req / ping before a login (the JS SDK logs in again)
NOT_BOUND = 1010           # the did is not bound to this user (another user's device alike)
DEVICE_OFFLINE = 1011      # the device is not connected to the bench
BAD_ATTRS = 1012           # c2s_write: unknown, read-only or wrongly typed data point
WRONG_P0_TYPE = 1013       # c2s_read / c2s_write / c2s_ack on a "custom" login
BAD_RAW = 1014             # c2s_raw: bytes out of range, a wrong prefix or varLen, too long
TOO_LARGE = 1015           # a message over the bench's size limit
COMMAND_FAILED = 1016      # the device refused the command, or did not answer in time
HEARTBEAT_TIMEOUT = 1017   # nothing from the client within its heartbeat: the session is closed
BUSY = 1018                # too many commands of this session waiting for their device
UNKNOWN_SN = 1019          # c2s_ack with a res_sn the bench never sent (or already acknowledged)
NOT_SUBSCRIBED = 1020      # a command to a bound device the session has not subscribed to

ATTRS_V4, CUSTOM = "attrs_v4", "custom"
P0_TYPES = (ATTRS_V4, CUSTOM)
MAX_HEARTBEAT_S = 180      # the document: "less than or equal to 180" (seconds)
MS_FROM = 1000             # a heartbeat_interval from here up is milliseconds (the WeChat demo's 180000)
MAX_SN = (1 << 31) - 1     # req_sn / res_sn: a JavaScript-safe positive int32
MAX_DID = 128
MAX_NAMES = 64             # c2s_read names
MAX_SUBSCRIBE = 1000       # dids in one subscribe_req (store.MAX_BINDINGS)

# -- raw frames ---------------------------------------------------------------------------------
PROTOCOL_VERSION = (0, 0, 0, 3)
CMD_TRANS = 0x90           # app -> device, no ack
CMD_TRANS_REPORT = 0x91    # device -> app
CMD_TRANS_ACKED = 0x93     # app -> device with a 4-byte sn, answered by 0x94
CMD_TRANS_ACK = 0x94       # the answer to 0x93 (device -> app)
APP_CMDS = (CMD_TRANS, CMD_TRANS_ACKED)
MAX_VARLEN = (1 << 28) - 1  # 268,435,455: the largest 4-byte remaining length
SN_BYTES = 4


def encode_varlen(n: int) -> bytes:
    """MQTT v3.1 remaining length: 7 bits a byte, least significant first,
    the high bit set on every byte but the last; 1 to 4 bytes."""
    if not isinstance(n, int) or isinstance(n, bool) or not 0 <= n <= MAX_VARLEN:
        raise ValueError(f"varLen must be 0-{MAX_VARLEN}, got {n!r}")
    out = bytearray()
    while True:
        digit, n = n % 128, n // 128
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def decode_varlen(buf: bytes | bytearray | list[int], offset: int = 0) -> tuple[int, int]:
    """(value, bytes it took) of the varLen at `offset`; ValueError for one
    longer than 4 bytes or cut short."""
    value, shift = 0, 0
    for i in range(4):
        if offset + i >= len(buf):
            raise ValueError("varLen is cut short")
        byte = buf[offset + i]
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, i + 1
        shift += 7
    raise ValueError("varLen is longer than 4 bytes")


def frame(cmd: int, data: bytes) -> list[int]:
    """`[0,0,0,3, varLen, 0,0, cmd] + data` as the byte list s2c_raw carries;
    varLen counts the bytes after it (the two flag bytes, cmd, data)."""
    return [*PROTOCOL_VERSION, *encode_varlen(3 + len(data)), 0, 0, cmd, *data]


def unframe(raw: list[int] | bytes) -> tuple[int, bytes]:
    """(cmd, data) of a framed packet; ValueError naming what is wrong."""
    if len(raw) < 4 or tuple(raw[:4]) != PROTOCOL_VERSION:
        raise ValueError("raw must begin with [0, 0, 0, 3, varLen, 0, 0, cmd]")
    length, used = decode_varlen(raw, 4)
    start = 4 + used
    if length != len(raw) - start:
        raise ValueError(f"varLen says {length} bytes follow it, but {len(raw) - start} do")
    if length < 3 or raw[start] != 0 or raw[start + 1] != 0:
        raise ValueError("raw must have [0, 0, cmd] after varLen")
    return raw[start + 2], bytes(raw[start + 3:])


# -- events -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Login:
    appid: str
    uid: str
    token: str
    p0_type: str
    heartbeat_s: int        # as the bench enforces it (heartbeat_interval read and bounded)
    auto_subscribe: bool


@dataclass(frozen=True)
class Subscribe:
    dids: tuple[str, ...]
    failed: tuple[tuple[str, int, str], ...] = ()   # entries that are no did: (shown, code, msg)


@dataclass(frozen=True)
class Read:
    did: str
    names: tuple[str, ...] | None
    req_sn: int | None


@dataclass(frozen=True)
class Write:
    did: str
    attrs: dict
    req_sn: int | None


@dataclass(frozen=True)
class Raw:
    did: str
    cmd: int
    sn: int | None          # the 4-byte sn of a 0x93 frame
    data: bytes


@dataclass(frozen=True)
class Ack:
    did: str
    res_sn: int


@dataclass(frozen=True)
class Ping:
    pass


@dataclass(frozen=True)
class Invalid:
    error_code: int
    msg: str
    extra: dict = field(default_factory=dict)


Event = Login | Subscribe | Read | Write | Raw | Ack | Ping | Invalid


def _shown(value: Any, n: int = 40) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else repr(value)
    return text if len(text) <= n else text[:n] + "..."


def did_of(value: Any) -> str:
    """A did as a client sends it. The JS SDK's dids may carry a `/usr…`
    suffix (its own s2c_raw workaround): everything from the first `/` is
    not part of a bench device id. ValueError for no did."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"did must be a non-empty string, got {_shown(value)}")
    did = value.split("/", 1)[0]
    if not did or len(did) > MAX_DID:
        raise ValueError(f"did must be 1-{MAX_DID} characters before any '/', got {_shown(value)}")
    return did


def heartbeat_seconds(value: Any) -> int:
    """heartbeat_interval -> the seconds the bench waits for the next
    message. The document says seconds, at most 180; the WeChat demo
    sends 180000 (milliseconds): from MS_FROM up a value is read as
    milliseconds. Anything above 180 s is held to 180 s. Absent: 180."""
    if value is None:
        return MAX_HEARTBEAT_S
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"heartbeat_interval must be a positive integer (seconds), got {_shown(value)}")
    seconds = -(-value // 1000) if value >= MS_FROM else value
    return min(seconds, MAX_HEARTBEAT_S)


def _sn(msg: dict, key: str, required: bool = False) -> int | None:
    if key not in msg:
        if required:
            raise ValueError(f"missing field '{key}'")
        return None
    value = msg[key]
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_SN:
        raise ValueError(f"{key} must be an integer 0-{MAX_SN}, got {_shown(value)}")
    return value


def _data(msg: dict, kind: type = dict) -> Any:
    data = msg.get("data")
    if not isinstance(data, kind):
        raise ValueError(f"'data' must be a JSON {'object' if kind is dict else 'array'}, got {_shown(data)}")
    return data


def _text(data: dict, key: str, n: int = 256) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value or len(value) > n:
        raise ValueError(f"'{key}' must be a non-empty string of at most {n} characters, got {_shown(value)}")
    return value


def raw_bytes(value: Any, limit: int) -> list[int]:
    """The raw byte array of c2s_raw: a list of at most `limit` integers
    0-255 (checked before anything is built from it)."""
    if not isinstance(value, list):
        raise ValueError(f"'raw' must be an array of bytes, got {_shown(value)}")
    if len(value) > limit:
        raise ValueError(f"'raw' holds {len(value)} bytes, at most {limit} are taken")
    for b in value:
        if not isinstance(b, int) or isinstance(b, bool) or not 0 <= b <= 255:
            raise ValueError(f"every byte of 'raw' must be an integer 0-255, got {_shown(b)}")
    return value


class Codec:
    """One client's messages: its state is whether it has logged in and
    with which p0_type (the session tells it: logged_in())."""

    def __init__(self, max_raw_data: int) -> None:
        self.max_raw_data = max_raw_data
        self.p0_type: str | None = None   # None: not logged in

    def logged_in(self, p0_type: str | None) -> None:
        self.p0_type = p0_type

    def receive(self, text: str) -> Event:
        try:
            msg = strict_json.parse(text)
        except ValueError as e:
            return Invalid(MALFORMED_JSON, f"the message is not JSON: {str(e)[:100]}")
        if not isinstance(msg, dict) or not isinstance(msg.get("cmd"), str):
            return Invalid(MALFORMED_JSON, 'a message is a JSON object with a string "cmd"')
        cmd = msg["cmd"]
        handler = _HANDLERS.get(cmd)
        if handler is None:
            return Invalid(UNKNOWN_CMD, f"unknown cmd {_shown(cmd)} (known: {', '.join(_HANDLERS)})")
        if self.p0_type is None and cmd not in ("login_req", "ping"):
            return Invalid(NOT_LOGGED_IN, f"{cmd}: log in first (login_req)")
        if self.p0_type == CUSTOM and cmd in ("c2s_read", "c2s_write", "c2s_ack"):
            return Invalid(WRONG_P0_TYPE, f"{cmd} needs a login with p0_type attrs_v4 (this one is custom)")
        try:
            return handler(self, msg)
        except ValueError as e:
            code = BAD_RAW if cmd == "c2s_raw" and "raw" in str(e) else BAD_FIELD
            return Invalid(code, f"{cmd}: {e}")

    def _login(self, msg: dict) -> Event:
        data = _data(msg)
        p0_type = data.get("p0_type", ATTRS_V4)
        if p0_type not in P0_TYPES:
            raise ValueError(f"p0_type must be attrs_v4 or custom, got {_shown(p0_type)}")
        auto = data.get("auto_subscribe", True)
        if not isinstance(auto, bool):
            raise ValueError(f"auto_subscribe must be true or false, got {_shown(auto)}")
        return Login(_text(data, "appid"), _text(data, "uid"), _text(data, "token"), p0_type,
                     heartbeat_seconds(data.get("heartbeat_interval")), auto)

    def _subscribe(self, msg: dict) -> Event:
        entries = _data(msg, list)
        if len(entries) > MAX_SUBSCRIBE:
            raise ValueError(f"at most {MAX_SUBSCRIBE} devices in one subscribe_req, got {len(entries)}")
        dids, failed = [], []
        for entry in entries:
            try:
                if not isinstance(entry, dict):
                    raise ValueError('each entry must be {"did": <str>}')
                did = did_of(entry.get("did"))
            except ValueError as e:
                shown = entry.get("did") if isinstance(entry, dict) and isinstance(entry.get("did"), str) else ""
                failed.append((shown[:MAX_DID], BAD_FIELD, str(e)))
                continue
            if did not in dids:
                dids.append(did)
        return Subscribe(tuple(dids), tuple(failed))

    def _read(self, msg: dict) -> Event:
        data = _data(msg)
        names = data.get("names")
        if names is not None:
            if not isinstance(names, list) or len(names) > MAX_NAMES or not all(isinstance(n, str) for n in names):
                raise ValueError(f"names must be an array of at most {MAX_NAMES} data point names")
            names = tuple(names)
        return Read(did_of(data.get("did")), names, _sn(msg, "req_sn"))

    def _write(self, msg: dict) -> Event:
        data = _data(msg)
        attrs = data.get("attrs")
        if not isinstance(attrs, dict) or not attrs:
            raise ValueError(f"attrs must be a non-empty object of data points, got {_shown(attrs)}")
        return Write(did_of(data.get("did")), attrs, _sn(msg, "req_sn"))

    def _raw(self, msg: dict) -> Event:
        data = _data(msg)
        did = did_of(data.get("did"))
        # the frame's head (4 + 4 + 3) and a 0x93 frame's sn around the data
        values = raw_bytes(data.get("raw"), self.max_raw_data + 11 + SN_BYTES)
        try:
            cmd, body = unframe(values)
        except ValueError as e:
            raise ValueError(f"raw: {e}") from None
        if cmd not in APP_CMDS:
            raise ValueError(f"raw: cmd must be 0x90 (no ack) or 0x93 (with ack), got {cmd:#04x}")
        sn = None
        if cmd == CMD_TRANS_ACKED:
            if len(body) < SN_BYTES:
                raise ValueError("raw: a 0x93 frame has a 4-byte sn after cmd")
            sn, body = int.from_bytes(body[:SN_BYTES], "big"), body[SN_BYTES:]
        if not 1 <= len(body) <= self.max_raw_data:
            raise ValueError(f"raw: 1-{self.max_raw_data} bytes of data for the device, got {len(body)}")
        return Raw(did, cmd, sn, body)

    def _ack(self, msg: dict) -> Event:
        res_sn = _sn(msg, "res_sn", required=True)
        return Ack(did_of(msg.get("did")), res_sn)  # type: ignore[arg-type]

    def _ping(self, msg: dict) -> Event:
        return Ping()


_HANDLERS = {"login_req": Codec._login, "subscribe_req": Codec._subscribe, "c2s_read": Codec._read,
             "c2s_write": Codec._write, "c2s_raw": Codec._raw, "c2s_ack": Codec._ack, "ping": Codec._ping}


# -- the cloud's messages -----------------------------------------------------------------------------
def _out(obj: dict) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def login_res(success: bool) -> str:
    return _out({"cmd": "login_res", "data": {"success": success}})


def subscribe_res(success: list[str], failed: list[tuple[str, int, str]]) -> str:
    return _out({"cmd": "subscribe_res", "data": {
        "success": [{"did": did, "error_code": 0, "msg": "ok"} for did in success],
        "failed": [{"did": did, "error_code": code, "msg": msg} for did, code, msg in failed]}})


def online_status(did: str, online: bool) -> str:
    """The bench has no passcodes and its devices no MAC: passcode is empty,
    mac is the device id (docs/protocols/gizwits-app.md)."""
    return _out({"cmd": "s2c_online_status", "data": {"did": did, "passcode": "", "mac": did, "online": online}})


def binding_changed(did: str, bind: bool) -> str:
    return _out({"cmd": "s2c_binding_changed", "data": {"did": did, "bind": bind}})


def noti(did: str, attrs: dict, res_sn: int | None = None, req_sn: int | None = None) -> str:
    if res_sn is not None and req_sn is not None:
        raise ValueError("res_sn and req_sn cannot both be in one s2c_noti")
    out: dict[str, Any] = {"cmd": "s2c_noti"}
    if res_sn is not None:
        out["res_sn"] = res_sn
    if req_sn is not None:
        out["req_sn"] = req_sn
    out["data"] = {"did": did, "attrs": attrs}
    return _out(out)


def s2c_ack(did: str, res_sn: int) -> str:
    return _out({"cmd": "s2c_ack", "res_sn": res_sn, "did": did})


def s2c_raw(did: str, cmd: int, data: bytes) -> str:
    return _out({"cmd": "s2c_raw", "data": {"did": did, "raw": frame(cmd, data)}})


def pong() -> str:
    return _out({"cmd": "pong"})


def invalid_msg(error_code: int, msg: str, **extra: Any) -> str:
    return _out({"cmd": "s2c_invalid_msg", "data": {"error_code": error_code, "msg": msg, **extra}})
