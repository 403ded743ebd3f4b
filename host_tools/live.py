"""One-line renderings of what the bench's hub reports to its observer, for
`doorlink demo`: a technician should read them at a glance. Punches and
admin logs arrive in the record vocabulary (agent/records.py), whatever
protocol the terminal spoke, so they are read one way only.
"""

from __future__ import annotations

import time

from agent import records


def _clock() -> str:
    return time.strftime("%H:%M:%S")


def _kv(payload: object) -> str:
    if not isinstance(payload, dict) or not payload:
        return ""
    return " ".join(f"{k}={payload[k]}" for k in sorted(payload))


def render(kind: str, data: dict) -> str | None:
    """Observer event -> a line, or None for what is not worth a line."""
    dev = data.get("device_id", "")
    if kind == "device_online":
        return f"{_clock()}  ONLINE     {dev} (from {data.get('peer', '?')}, {data.get('protocol', '?')})"
    if kind == "device_offline":
        return f"{_clock()}  OFFLINE    {dev}"
    if kind == records.TELEMETRY:
        return f"{_clock()}  telemetry  {dev}  {_kv(data.get('payload'))}"
    if kind == records.EVENT:
        if data.get("event_type") in (records.PUNCH, records.ADMIN_LOG):
            return None  # reported as the record it is (below)
        return f"{_clock()}  event      {dev}  {data.get('event_type')}  {_kv(data.get('payload'))}"
    if kind == "command":
        return f"{_clock()}  command -> {dev}  {data.get('command')} {_kv(data.get('payload'))} (id {data.get('id')})"
    if kind in (records.PUNCH, records.ADMIN_LOG):
        value = data.get("value") or {}
        who = f"user={value.get(records.USER, '?')} at {value.get(records.WHEN, '?')} ({data.get('protocol')})"
        if kind == records.PUNCH:
            return f"{_clock()}  PUNCH      {dev}  {who}"
        return f"{_clock()}  ADMIN LOG  {dev}  {value.get(records.ACTION, '?')} {who}"
    if kind == "error":
        return f"{_clock()}  error      {data.get('message')}"
    return None
