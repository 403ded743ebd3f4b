"""Bench cloud: the server side of seed 001's HTTP CloudSolution 3.0 protocol.

Devices POST JSON to `/api/device-http`; `cmd` names the request (`reg`,
`sendlog`, `checklive`) and every reply echoes it as `ret` with a boolean
`result` (and a `reason` when false). Malformed requests get HTTP 400 with
the same reply shape; a well-formed request from an unknown device gets
HTTP 200 with `result: false`, as the protocol has it.

Authentication is the known-device check only: the seed's example device
has a TOKEN it never sends.

`sendlog` record i stands for device log `logindex + i`; punches are stored
under that log id and events under that record id, so a batch the device
resends (it never heard our reply) is acknowledged again, stored once.
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

PATH = "/api/device-http"
MAX_BODY = 1 << 20  # 1 MB

# CloudSolution door event codes (records with enrollid 0).
EVENT_NAMES = {
    0: "door_closed",
    1: "door_opened",
    2: "exit_button",
    3: "door_unlocked",
    4: "door_locked",
    5: "forced_open",
    6: "tamper",
    7: "alarm",
}


class BadRequest(Exception):
    """The request is malformed: HTTP 400 with this reason."""


def cloudtime(now: float | None = None) -> str:
    """The server clock in the seed's format, UTC: '2026-06-12T10:30:00Z'."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if now is None else now))


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _check_sendlog(msg: dict) -> list[dict]:
    count, logindex, records = msg.get("count"), msg.get("logindex"), msg.get("record")
    if "count" not in msg:
        raise BadRequest("missing field 'count'")
    if not _is_int(count) or count < 0:
        raise BadRequest("field 'count' must be a non-negative integer")
    if "logindex" not in msg:
        raise BadRequest("missing field 'logindex'")
    if not _is_int(logindex) or logindex < 0:
        raise BadRequest("field 'logindex' must be a non-negative integer")
    if "record" not in msg:
        raise BadRequest("missing field 'record'")
    if not isinstance(records, list):
        raise BadRequest("field 'record' must be an array")
    if count != len(records):
        raise BadRequest(f"count is {count} but 'record' holds {len(records)} records")
    for i, rec in enumerate(records):
        if not isinstance(rec, dict):
            raise BadRequest(f"record {i} must be a JSON object")
        enrollid = rec.get("enrollid")
        if not (_is_int(enrollid) and enrollid >= 0) and not (isinstance(enrollid, str) and enrollid):
            raise BadRequest(f"record {i}: field 'enrollid' must be a non-negative integer or a non-empty string")
        if not isinstance(rec.get("time"), str) or not rec["time"]:
            raise BadRequest(f"record {i}: field 'time' must be a non-empty string")
        if enrollid == 0 and rec.get("event") not in EVENT_NAMES:
            raise BadRequest(f"record {i}: a door event (enrollid 0) needs 'event' 0-7")
    return records


def add_routes(app: web.Application) -> None:
    # Imported here: server.py imports this module while it is still loading.
    from .server import STATE, STORE, parse_text

    def reply(cmd: str, status: int = 200, **fields: Any) -> web.Response:
        return web.json_response({"ret": cmd, **fields}, status=status)

    def refuse(request: web.Request, cmd: str, reason: str) -> web.Response:
        state = request.app[STATE]
        state.errors["http_invalid"] += 1
        state.notify("error", {"peer": request.remote, "message": reason, "kind": "http_invalid",
                               "device_id": None})
        return reply(cmd, 400, result=False, reason=reason)

    async def read_body(request: web.Request) -> bytes:
        if request.content_length is not None and request.content_length > MAX_BODY:
            raise BadRequest(f"request body of {request.content_length} bytes is over the {MAX_BODY} byte limit")
        # Chunked uploads announce no length: read at most one byte past the limit.
        body = await request.content.read(MAX_BODY + 1)
        while len(body) <= MAX_BODY:
            more = await request.content.read(MAX_BODY + 1 - len(body))
            if not more:
                break
            body += more
        if len(body) > MAX_BODY:
            raise BadRequest(f"request body is over the {MAX_BODY} byte limit")
        return body

    async def handler(request: web.Request) -> web.Response:
        app = request.app
        state, store = app[STATE], app[STORE]
        cmd = "error"
        try:
            body = await read_body(request)
            try:
                msg = parse_text(body.decode("utf-8"))
            except (UnicodeDecodeError, ValueError) as exc:
                raise BadRequest(f"body is not JSON: {exc}") from None
            if not isinstance(msg, dict):
                raise BadRequest("body must be a JSON object")
            if not isinstance(msg.get("cmd"), str) or not msg["cmd"]:
                raise BadRequest("missing field 'cmd'")
            cmd = msg["cmd"]
            if cmd not in ("reg", "sendlog", "checklive"):
                shown = cmd if len(cmd) <= 40 else cmd[:40] + "..."
                raise BadRequest(f"unknown cmd {shown!r}; expected reg, sendlog or checklive")
            sn = msg.get("sn")
            if not isinstance(sn, str) or not sn:
                raise BadRequest("field 'sn' must be a non-empty string")
            records = _check_sendlog(msg) if cmd == "sendlog" else None
        except BadRequest as exc:
            return refuse(request, cmd, str(exc))

        state.counts["http_" + cmd] += 1
        if sn not in {d["device_id"] for d in store.devices()}:
            state.errors["auth"] += 1
            state.notify("error", {"peer": request.remote, "message": f"unknown device {sn}", "kind": "auth",
                                   "device_id": sn})
            return reply(cmd, result=False, reason="unknown device")

        if cmd == "reg":
            state.notify("device_online", {"device_id": sn, "peer": request.remote, "protocol": "http",
                                           "devinfo": msg.get("devinfo")})
            return reply(cmd, result=True, cloudtime=cloudtime(), nosenduser=True)
        if cmd == "checklive":
            return reply(cmd, result=True, cloudtime=cloudtime())

        logindex = msg["logindex"]
        for i, rec in enumerate(records):
            log_id = logindex + i
            if rec["enrollid"] == 0:
                name = EVENT_NAMES[rec["event"]]
                fresh = store.add_event(sn, name, rec, record_id=log_id) is not None
                data = {"device_id": sn, "event_type": name, "payload": rec, "id": log_id}
                kind = "event"
            else:
                fresh = store.add_punch(sn, "http", str(log_id), str(rec["enrollid"]), rec["time"], rec)
                data = {"device_id": sn, "protocol": "http", "log_id": str(log_id),
                        "user_id": str(rec["enrollid"]), "time": rec["time"]}
                kind = "punch"
            if fresh:
                state.notify(kind, data)
            else:
                state.duplicates += 1
        return reply(cmd, result=True, count=len(records), logindex=logindex, cloudtime=cloudtime(), access=1)

    app.router.add_post(PATH, handler)

