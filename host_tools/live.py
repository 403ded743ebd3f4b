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


MAX_VALUE = 60   # characters of one value shown (a users_sync page is 50 users)


def _kv(payload: object) -> str:
    if not isinstance(payload, dict) or not payload:
        return ""
    out = []
    for k in sorted(payload):
        v = str(payload[k])
        out.append(f"{k}={v if len(v) <= MAX_VALUE else v[:MAX_VALUE] + '…'}")
    return " ".join(out)


# Door events a technician reads at a glance: what happened at which door,
# who, how, why (docs/door-controller.md, section 4).
ALARMS = {"door_forced": "forced open", "door_held_open": "held open", "door_tamper": "tamper"}


def _door(dev: str, name: str | None, p: dict) -> str | None:
    door = p.get("door", "?")
    if name == "unlocked":
        who = f"user={p['user']} by {p.get('source')} {p.get('credential', '')}".rstrip() if p.get("user") \
            else f"by {p.get('source')}"
        tag = "GRANTED  " if p.get("user") else "UNLOCKED "
        return f"{_clock()}  {tag}  {dev}  {door}  {who}"
    if name == "access_denied":
        how = " ".join(str(x) for x in (f"user={p['user']}" if p.get("user") else None, p.get("source"),
                                        p.get("credential")) if x)
        return f"{_clock()}  DENIED     {dev}  {door}  {how}: {p.get('reason')}"
    if name in ALARMS:
        if name == "door_tamper" and not p.get("active"):
            return f"{_clock()}  alarm off  {dev}  {door}  tamper switch back to normal"
        extra = f" for {p['open_s']} s" if "open_s" in p else ""
        return f"{_clock()}  ALARM      {dev}  {door}  {ALARMS[name]}{extra}"
    if name == "alarm_cleared":
        return f"{_clock()}  alarm off  {dev}  {door}  {p.get('alarm')} cleared by {p.get('by')}"
    if name in ("door_opened", "door_closed"):
        return f"{_clock()}  door       {dev}  {door}  {name[5:]}"
    if name == "locked":
        return f"{_clock()}  locked     {dev}  {door}  ({p.get('reason')})"
    if name == "rex":
        return f"{_clock()}  exit btn   {dev}  {door}"
    return None


def render(kind: str, data: dict) -> str | None:
    """Observer event -> a line, or None for what is not worth a line."""
    dev = data.get("device_id", "")
    if kind == "device_online":
        return f"{_clock()}  ONLINE     {dev} (from {data.get('peer', '?')}, {data.get('protocol', '?')})"
    if kind == "device_offline":
        return f"{_clock()}  OFFLINE    {dev}"
    # The management channel (cloud control), beside the uplink.
    if kind == "control_online":
        signed = "signed requests" if data.get("signed") else "unsigned requests"
        return f"{_clock()}  CONTROL    {dev}  management channel open (from {data.get('peer', '?')}, {signed})"
    if kind == "control_offline":
        return f"{_clock()}  CONTROL    {dev}  management channel closed: {data.get('reason', '?')}"
    if kind == records.TELEMETRY:
        return f"{_clock()}  telemetry  {dev}  {_kv(data.get('payload'))}"
    if kind == records.EVENT:
        if data.get("event_type") in (records.PUNCH, records.ADMIN_LOG):
            return None  # reported as the record it is (below)
        payload = data.get("payload")
        if isinstance(payload, dict):
            line = _door(dev, data.get("event_type"), payload)
            if line:
                return line
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
