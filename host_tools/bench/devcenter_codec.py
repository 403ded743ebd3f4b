"""The developer-center WebSocket API's messages (the seed 003 document),
without I/O: what a client sends, parsed and checked into one named request
or a DcError carrying the document's error code; what the server sends,
built field for field as the document shows it.

docs/protocols/developer-center.md tells how the bench answers each
message; devcenter.py runs the sessions. Nothing here knows the hub, the
agent or the Thing model: the TSL `kv` items are parsed into KvItem and
left for the session to map (thing_map.py).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import time
from dataclasses import dataclass
from typing import Any

from . import strict_json

SUCC = 1
SUCC_MSG = "succ"

# The document's error table (section "Error Code Description"), word for word.
MESSAGES = {
    4001: "server internal exception",
    4002: "the JSON data is incorrectly formatted",
    4003: "command is empty",
    4004: "command is not supported",
    4005: "data is empty",
    4006: "data format is incorrect",
    4007: "token is empty",
    4008: "token validation failed",
    4009: "user cannot login repeatedly",
    4010: "user not logged in",
    4011: "device is not bound",
    4012: "subscription type is not supported",
    4013: "not subscribed",
    4014: "device is not subscribed",
    4015: "operation type is not supported",
    4016: "request failed",
    4017: "failed to send data",
    4018: "device is not certified",
    4019: "the frequency of device messages sent is limited",
    4020: "product type and parameter type do not match",
    4021: "product key is empty",
    4022: "product key is incorrectly formatted",
    4023: "device key is empty",
    4024: "device key is incorrectly formatted",
    4025: "message type is empty",
    4026: "operation type is empty",
    4027: "device message upper limit",
    4028: "validation of downstream data format of physical model is abnormal",
    4029: "the message id is incorrectly formatted",
    4030: "device offline",
}

# subscribe messageType values, as the document lists them
MESSAGE_TYPES = ("ONLINE", "STATUS", "RAW-UPLINK", "MATTR-REPORT", "MEVENT-INFO", "MEVENT-WARN", "MEVENT-ERROR",
                 "LOCATION-INFO-KV")
SEND_TYPES = ("READ-ATTR", "WRITE-ATTR", "EXE-SERV", "RAW")
DATA_FORMATS = ("Text", "Hex", "Base64")
EVENT_LEVELS = ("INFO", "WARN", "ERROR")
ONLINE_VALUES = (0, 1, 2)   # offline, online, re-online

MAX_TARGETS = 100           # devices in one subscribe / unsubscribe
MAX_RAW = 256               # bytes of one RAW send: the agent's raw passthrough limit
MAX_KV_ITEMS = 32           # TSL items in one send
MAX_MSG_ID_DIGITS = 20      # "Maximum length: 20 bytes"
DEFAULT_CACHE_S = 3600      # isCache without cacheTime
MAX_CACHE_S = 7 * 86400     # the bench keeps a cached command a week at most
MAX_REQ_ECHO = 1024         # characters of a request echoed in an error's reqMsg
_PRODUCT_KEY = re.compile(r"[A-Za-z0-9_-]{1,64}")
_DEVICE_KEY = re.compile(r"[^\s\x00-\x1f\x7f]{1,128}")


class DcError(Exception):
    """A request refused with one of the document's codes; `detail` says
    what exactly (the bench's extension: the table's text is generic)."""

    def __init__(self, code: int, detail: str | None = None) -> None:
        super().__init__(f"{code} {MESSAGES[code]}" + (f": {detail}" if detail else ""))
        self.code = code
        self.msg = MESSAGES[code]
        self.detail = detail


# -- client -> server ---------------------------------------------------------------
@dataclass(frozen=True)
class Login:
    token: str


@dataclass(frozen=True)
class Target:
    """One entry of subscribe / unsubscribe: `code` is SUCC when the entry
    itself is well-formed, else the per-device error the reply carries."""

    product_key: str
    device_key: str
    code: int = SUCC
    message_types: tuple[str, ...] = ()


@dataclass(frozen=True)
class Subscribe:
    targets: tuple[Target, ...]


@dataclass(frozen=True)
class Unsubscribe:
    targets: tuple[Target, ...]


@dataclass(frozen=True)
class KvItem:
    """One TSL item of a send's kv: `ident` is its id (a number in the
    document, the bench's TSL ids are names), `name` and `type` as given,
    `value` as sent (text in the document: "true")."""

    ident: str | int | None
    name: str | None = None
    type: str | None = None
    value: Any = None


@dataclass(frozen=True)
class Send:
    product_key: str
    device_key: str
    type: str
    raw: bytes | None = None
    kv: tuple[KvItem, ...] | None = None
    is_cache: bool = False
    cache_time: int = DEFAULT_CACHE_S
    msg_id: int = 0
    qos: int = 1
    version: int = 1


@dataclass(frozen=True)
class Pong:
    pass


Request = Login | Subscribe | Unsubscribe | Send | Pong


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    return {int: "number", float: "number", str: "string", list: "array", dict: "object"}.get(type(value), "value")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def parse(text: str, max_bytes: int = 65536) -> Request:
    """One text frame from a client -> its request; DcError otherwise."""
    if len(text) > max_bytes or len(text.encode("utf-8", "surrogatepass")) > max_bytes:
        raise DcError(4006, f"message over {max_bytes} bytes")
    try:
        msg = strict_json.parse(text)
    except ValueError as e:
        raise DcError(4002, str(e)) from None
    if not isinstance(msg, dict):
        raise DcError(4006, f"a message is a JSON object, got {_kind(msg)}")
    cmd = msg.get("cmd")
    if cmd is None or cmd == "":
        raise DcError(4003, "missing field 'cmd'")
    if not isinstance(cmd, str):
        raise DcError(4004, f"field 'cmd' must be a string, got {_kind(cmd)}")
    if cmd == "pong":
        return Pong()
    reader = _READERS.get(cmd)
    if reader is None:
        shown = cmd if len(cmd) <= 40 else cmd[:40] + "..."
        raise DcError(4004, f"unknown cmd {shown!r}: one of login, subscribe, send, unsubscribe, pong")
    data = msg.get("data")
    if data is None or data == {} or data == [] or data == "":
        raise DcError(4005, f"{cmd} needs 'data'")
    return reader(msg, data)


def _login(_msg: dict, data: Any) -> Login:
    if not isinstance(data, dict):
        raise DcError(4006, f"login data is an object {{\"token\": ...}}, got {_kind(data)}")
    token = data.get("token")
    if token is None or token == "":
        raise DcError(4007)
    if not isinstance(token, str):
        raise DcError(4006, f"'token' must be a string, got {_kind(token)}")
    return Login(token)


def _key_code(entry: dict) -> int:
    """The per-device code of an entry's productKey and deviceKey."""
    pk, dk = entry.get("productKey"), entry.get("deviceKey")
    if pk is None or pk == "":
        return 4021
    if not isinstance(pk, str) or not _PRODUCT_KEY.fullmatch(pk):
        return 4022
    if dk is None or dk == "":
        return 4023
    if not isinstance(dk, str) or not _DEVICE_KEY.fullmatch(dk):
        return 4024
    return SUCC


def _shown_key(value: Any) -> str:
    """A key as the reply echoes it: text as given (bounded), else empty."""
    return value[:128] if isinstance(value, str) else ""


def _targets(cmd: str, data: Any, with_types: bool) -> tuple[Target, ...]:
    if not isinstance(data, list):
        raise DcError(4006, f"{cmd} data is a JSON array of devices, got {_kind(data)}")
    if len(data) > MAX_TARGETS:
        raise DcError(4006, f"at most {MAX_TARGETS} devices in one {cmd}, got {len(data)}")
    out = []
    for entry in data:
        if not isinstance(entry, dict):
            out.append(Target("", "", 4006))
            continue
        pk, dk = _shown_key(entry.get("productKey")), _shown_key(entry.get("deviceKey"))
        code = _key_code(entry)
        types: tuple[str, ...] = ()
        if code == SUCC and with_types:
            code, types = _message_types(entry.get("messageType"))
        out.append(Target(pk, dk, code, types))
    return tuple(out)


def _message_types(value: Any) -> tuple[int, tuple[str, ...]]:
    if value is None or value == []:
        return 4025, ()
    if not isinstance(value, list):
        return 4006, ()
    if any(t not in MESSAGE_TYPES for t in value):
        return 4012, ()
    return SUCC, tuple(dict.fromkeys(value))


def _subscribe(_msg: dict, data: Any) -> Subscribe:
    return Subscribe(_targets("subscribe", data, with_types=True))


def _unsubscribe(_msg: dict, data: Any) -> Unsubscribe:
    return Unsubscribe(_targets("unsubscribe", data, with_types=False))


def decode_raw(raw: Any, data_format: str) -> bytes:
    """A RAW send's `raw` in its dataFormat -> the bytes for the device."""
    if not isinstance(raw, str) or raw == "":
        raise DcError(4020, "a RAW send needs 'raw' (a string)")
    try:
        if data_format == "Hex":
            data = bytes.fromhex(raw)
        elif data_format == "Base64":
            data = base64.b64decode(raw.encode("ascii"), validate=True)
        else:
            data = raw.encode("utf-8")
    except (ValueError, binascii.Error, UnicodeEncodeError):
        raise DcError(4006, f"'raw' is not valid {data_format}") from None
    if len(data) > MAX_RAW:
        raise DcError(4006, f"'raw' is {len(data)} bytes: at most {MAX_RAW}")
    return data


def parse_kv(kv: Any) -> tuple[KvItem, ...]:
    """A send's kv -> its items. The document sends a JSON *string* holding
    an array of {"id", "name", "type", "value"}; the bench also takes that
    array (or an object of id: value) as JSON itself, and bare ids for a
    READ-ATTR."""
    if isinstance(kv, str):
        try:
            kv = strict_json.parse(kv)
        except ValueError as e:
            raise DcError(4028, f"'kv' is not JSON: {e}") from None
    if isinstance(kv, dict):
        kv = [{"id": k, "value": v} for k, v in kv.items()]
    if not isinstance(kv, list) or not kv:
        raise DcError(4028, "'kv' is a non-empty array of {\"id\", \"name\", \"type\", \"value\"}")
    if len(kv) > MAX_KV_ITEMS:
        raise DcError(4028, f"at most {MAX_KV_ITEMS} items in 'kv', got {len(kv)}")
    items = []
    for item in kv:
        if isinstance(item, (str, int)) and not isinstance(item, bool):
            items.append(KvItem(item))
            continue
        if not isinstance(item, dict):
            raise DcError(4028, f"a 'kv' item is an object, got {_kind(item)}")
        ident, name, tsl_type = item.get("id"), item.get("name"), item.get("type")
        if ident is not None and (isinstance(ident, bool) or not isinstance(ident, (str, int))):
            raise DcError(4028, "a 'kv' item's 'id' is a number or a string")
        if ident is None and not isinstance(name, str):
            raise DcError(4028, "a 'kv' item needs an 'id' (or a 'name')")
        if name is not None and not isinstance(name, str):
            raise DcError(4028, "a 'kv' item's 'name' is a string")
        if tsl_type is not None and not isinstance(tsl_type, str):
            raise DcError(4028, "a 'kv' item's 'type' is a string")
        items.append(KvItem(ident, name, tsl_type, item.get("value")))
    return tuple(items)


def _msg_id(value: Any) -> int:
    """msgId: a number of at most 20 digits (a digit string is taken too)."""
    if value is None:
        return 0
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value) if len(value) <= MAX_MSG_ID_DIGITS else -1
    if not _is_int(value) or not 0 <= value < 10 ** MAX_MSG_ID_DIGITS:
        raise DcError(4029, f"msgId is a whole number of at most {MAX_MSG_ID_DIGITS} digits")
    return value


def _send(msg: dict, data: Any) -> Send:
    if not isinstance(data, dict):
        raise DcError(4006, f"send data is an object, got {_kind(data)}")
    code = _key_code(data)
    if code != SUCC:
        raise DcError(code)
    version = msg.get("version", 1)
    if version not in (1, 2) or isinstance(version, bool):
        raise DcError(4006, "'version' is 1 or 2")
    op = data.get("type")
    if op is None or op == "":
        raise DcError(4026)
    if op not in SEND_TYPES:
        raise DcError(4015, f"'type' is one of {', '.join(SEND_TYPES)}")
    msg_id = _msg_id(data.get("msgId"))
    qos = data.get("QoS", 1)
    if qos not in (0, 1) or isinstance(qos, bool):
        raise DcError(4006, "'QoS' is 0 or 1")
    is_cache = data.get("isCache", False)
    if not isinstance(is_cache, bool):
        raise DcError(4006, "'isCache' is true or false")
    cache_time = data.get("cacheTime", DEFAULT_CACHE_S)
    if not _is_int(cache_time) or not 1 <= cache_time <= MAX_CACHE_S:
        raise DcError(4006, f"'cacheTime' is a whole number of seconds, 1 to {MAX_CACHE_S}")
    data_format = data.get("dataFormat", "Text")
    if data_format not in DATA_FORMATS:
        raise DcError(4006, f"'dataFormat' is one of {', '.join(DATA_FORMATS)}")
    raw = kv = None
    if op == "RAW":
        raw = decode_raw(data.get("raw"), data_format)
    elif data.get("kv") is None:
        if op != "READ-ATTR":
            raise DcError(4020, f"a {op} send needs 'kv'")
    else:
        kv = parse_kv(data["kv"])
    return Send(data["productKey"], data["deviceKey"], op, raw, kv, is_cache, cache_time, msg_id, qos, version)


_READERS = {"login": _login, "subscribe": _subscribe, "unsubscribe": _unsubscribe, "send": _send}


def coerce(value: Any, point_type: str) -> Any:
    """A TSL value as sent (the document sends text: "true", "25") -> the
    value of a data point of `point_type` (thing_map's types: bool, enum,
    int8/uint16/..., number, string). DcError 4028 when it is not one."""
    if point_type == "bool":
        if isinstance(value, bool):
            return value
        if value in ("true", "false", "1", "0", 1, 0):
            return value in ("true", "1", 1)
    elif point_type in ("enum",) or point_type.startswith(("int", "uint")):
        if _is_int(value):
            return value
        if isinstance(value, str) and re.fullmatch(r"-?[0-9]{1,19}", value):
            return int(value)
        if point_type == "enum" and isinstance(value, str) and value:
            return value
    elif point_type in ("number", "float", "double"):
        if _is_int(value) or isinstance(value, float):
            return value
        if isinstance(value, str) and re.fullmatch(r"-?[0-9]{1,15}(\.[0-9]{1,15})?", value):
            return float(value)
    elif isinstance(value, str):
        return value
    return _no_value(value, point_type)


def _no_value(value: Any, point_type: str) -> Any:
    raise DcError(4028, f"{_kind(value)} {str(value)[:40]!r} is not a {point_type} value")


# -- server -> client --------------------------------------------------------------
def now_ms() -> int:
    return int(time.time() * 1000)


def new_ticket() -> str:
    """A message identifier shaped as the document's (24 hex digits: time
    in seconds, then random)."""
    return f"{int(time.time()) & 0xFFFFFFFF:08x}{os.urandom(8).hex()}"


def _dump(obj: dict) -> str:
    return json.dumps(obj, ensure_ascii=False)


def login_resp(code: int = SUCC) -> str:
    return _dump({"cmd": "login_resp", "data": {"code": code, "msg": SUCC_MSG if code == SUCC else MESSAGES[code]}})


def _results(cmd: str, targets: list[tuple[str, str, int]]) -> str:
    return _dump({"cmd": cmd, "data": [
        {"code": code, "deviceKey": dk, "msg": SUCC_MSG if code == SUCC else MESSAGES[code], "productKey": pk}
        for pk, dk, code in targets]})


def subscribe_resp(targets: list[tuple[str, str, int]]) -> str:
    """(productKey, deviceKey, code) per entry, in the request's order."""
    return _results("subscribe_resp", targets)


def unsubscribe_resp(targets: list[tuple[str, str, int]]) -> str:
    return _results("unsubscribe_resp", targets)


def error(code: int, req_msg: str = "", detail: str | None = None) -> str:
    """The `error` message; `detail` is the bench's extension (why)."""
    data: dict[str, Any] = {"code": code, "msg": MESSAGES[code], "reqMsg": req_msg[:MAX_REQ_ECHO]}
    if detail:
        data["detail"] = detail
    return _dump({"cmd": "error", "data": data})


def send_ack(ticket: str, msg_id: int, product_key: str, device_key: str, created_at: int, sent_at: int,
             ack_at: int, ok: bool) -> str:
    return _dump({"cmd": "send_ack", "data": {
        "msgId": msg_id, "ticket": ticket, "productKey": product_key, "deviceKey": device_key,
        "createdAt": created_at, "sentAt": sent_at, "ackAt": ack_at, "status": "succ" if ok else "fail"}})


@dataclass(frozen=True)
class Push:
    """A `message` for one device, before it is addressed: `kind` is the
    messageType a subscription names (None: sent to the device's users
    whatever they subscribed, as ENDUSER is), `type`/`subtype` and `data`
    as the document shows them."""

    kind: str | None
    type: str
    subtype: str | None
    data: dict
    as_text: bool = False   # `data` of the message is a JSON string (ENDUSER, as the document shows it)


def online(value: int) -> Push:
    return Push("ONLINE", "ONLINE", None, {"value": value})


def status(packet_id: int, kv: dict[str, Any]) -> Push:
    """Device and module status; values as text, as the document shows them."""
    return Push("STATUS", "STATUS", None, {"packetId": packet_id,
                                          "kv": {k: v if isinstance(v, str) else json.dumps(v)
                                                 for k, v in kv.items()}})


def raw_uplink(packet_id: int, raw: bytes) -> Push:
    return Push("RAW-UPLINK", "RAW", "UPLINK", {"packetId": packet_id,
                                               "raw": base64.b64encode(raw).decode("ascii")})


def mattr_report(packet_id: int, kv: dict[str, Any]) -> Push:
    return Push("MATTR-REPORT", "MATTR", "REPORT", {"packetId": packet_id, "kv": kv})


def mevent(level: str, packet_id: int, code: str, kv: dict[str, Any]) -> Push:
    if level not in EVENT_LEVELS:
        raise ValueError(f"event level is one of {EVENT_LEVELS}, got {level!r}")
    return Push(f"MEVENT-{level}", "MEVENT", level, {"packetId": packet_id, "code": code, "kv": kv})


def location(packet_id: int, kv: dict[str, Any], loc_type: str = "LBS", sub_type: str = "LBS") -> Push:
    return Push("LOCATION-INFO-KV", "LOCATION", "INFO-KV", {"packetId": packet_id, "type": loc_type,
                                                          "subType": sub_type, "kv": kv})


# ENDUSER value: 0 device removed (unbound), 1 device added (bound); invalidCause 1: unbound
def user_bind(bound: bool, end_user_id: str, end_user_domain: str) -> Push:
    data: dict[str, Any] = {"endUserId": end_user_id, "endUserDomain": end_user_domain, "value": 1 if bound else 0,
                            "authStatus": 1, "authLevel": 1}
    if not bound:
        data["invalidCause"] = 1
    return Push(None, "ENDUSER", "USER-BIND", data, as_text=True)


def message(push: Push, product_key: str, device_key: str, ticket: str | None = None,
            created_at: int | None = None, device_name: str | None = None) -> str:
    """The `message` carrying `push` for one device, with its ticket and
    createdAt (ms)."""
    body: dict[str, Any] = {"productKey": product_key, "deviceKey": device_key, "type": push.type}
    if push.subtype is not None:
        body["subtype"] = push.subtype
    if device_name is not None:
        body["deviceName"] = device_name
    body["createdAt"] = now_ms() if created_at is None else created_at
    body["ticket"] = new_ticket() if ticket is None else ticket
    body["data"] = push.data
    return _dump({"cmd": "message", "data": _dump(body) if push.as_text else body})
