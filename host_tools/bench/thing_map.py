"""The ONE mapping from the agent's Thing model to app data points.

Both app APIs use it: the Gizwits app API (gizwits.py: data point names,
c2s_write / s2c_noti attrs) and the developer-center API (TSL ids, names
and types: READ-ATTR, WRITE-ATTR, EXE-SERV, MATTR-REPORT, MEVENT). The
README shows the table made from POINTS, SERVICES and EVENTS.

The agent sends no property changes over the wire, only the events its
peripherals raise (agent/uplinks/base.py), telemetry samples and its
command results: so every data point says which broadcast it comes from,
and the hub keeps the current values (hub.attrs) from the broadcasts it
sends admins. One door per device: a board with several doors reports
every door's events into the same points (docs/protocols/gizwits-app.md,
"Limits").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agent import records as r
from agent.peripherals.door import MAX_UNLOCK_MS, MIN_UNLOCK_MS, MODES

# Gizwits data point types and the developer center's TSL data types.
BOOL, ENUM, UINT16, INT16, FLOAT, STRING = "bool", "enum", "uint16", "int16", "float", "string"
TSL_TYPES = {BOOL: "BOOL", ENUM: "ENUM", UINT16: "INT", INT16: "INT", FLOAT: "FLOAT", STRING: "TEXT"}

LOCK_STATES = ("locked", "unlocked")
DOOR_POSITIONS = ("unknown", "closed", "open")
DECISIONS = ("none", "granted", "denied")
ALARM_FORCED, ALARM_HELD_OPEN, ALARM_TAMPER = "forced", "held_open", "tamper"
MAX_STRING = 64   # the longest text a string data point carries (longer is cut)


@dataclass(frozen=True)
class Point:
    """One data point: its Gizwits name, TSL id and name, type (values for
    an enum), whether an app may write it, and where its value comes from."""

    name: str
    tsl_id: str
    tsl_name: str
    type: str
    writable: bool
    source: str
    values: tuple[str, ...] = ()
    unit: str = ""

    @property
    def tsl_type(self) -> str:
        return TSL_TYPES[self.type]


POINTS: tuple[Point, ...] = (
    Point("online", "Online", "Online", BOOL, False, "device_status online/offline"),
    Point("lock_state", "LockState", "Lock state", ENUM, False, "events unlocked / locked", LOCK_STATES),
    Point("unlock", "Unlock", "Unlocked", BOOL, True,
          "events unlocked / locked (true while unlocked); write true -> command unlock, false -> lock"),
    Point("door_position", "DoorPosition", "Door position", ENUM, False, "events door_opened / door_closed",
          DOOR_POSITIONS),
    Point("door_mode", "DoorMode", "Door mode", ENUM, True, "event door_mode; write -> command door_mode",
          tuple(MODES)),
    Point("alarm_forced", "AlarmForced", "Door forced alarm", BOOL, False,
          "event door_forced (true), alarm_cleared forced (false)"),
    Point("alarm_held_open", "AlarmHeldOpen", "Door held open alarm", BOOL, False,
          "event door_held_open (true), alarm_cleared held_open / door_closed (false)"),
    Point("alarm_tamper", "AlarmTamper", "Tamper alarm", BOOL, False,
          "event door_tamper (its active), alarm_cleared tamper (false)"),
    Point("temperature", "Temperature", "Temperature", FLOAT, False, "telemetry temperature", unit="°C"),
    Point("humidity", "Humidity", "Relative humidity", FLOAT, False, "telemetry humidity", unit="%"),
    Point("last_punch_user", "LastPunchUser", "Last punch: user", STRING, False, "event punch user"),
    Point("last_punch_time", "LastPunchTime", "Last punch: time", STRING, False,
          "event punch time (site wall clock)"),
    Point("last_access", "LastAccess", "Last access decision", ENUM, False,
          "events unlocked (granted) / access_denied (denied)", DECISIONS),
    Point("last_access_user", "LastAccessUser", "Last access: user", STRING, False,
          "events unlocked / access_denied user (empty when unknown)"),
    Point("last_access_source", "LastAccessSource", "Last access: source", STRING, False,
          "events unlocked / access_denied source (card, pin, fingerprint, rex, cloud ...)"),
    Point("last_access_reason", "LastAccessReason", "Last access: reason", STRING, False,
          "events unlocked / access_denied reason (empty when none)"),
)
BY_NAME = {p.name: p for p in POINTS}
BY_TSL_ID = {p.tsl_id: p for p in POINTS}


@dataclass(frozen=True)
class Service:
    """A service (DC EXE-SERV): its TSL id and name, the agent command it
    becomes, and the parameters it takes (name -> TSL type)."""

    tsl_id: str
    tsl_name: str
    command: str
    params: tuple[tuple[str, str], ...]


SERVICES: tuple[Service, ...] = (
    Service("unlock", "Unlock the door", "unlock", ((r.DOOR, "TEXT"), (r.DURATION_MS, "INT"))),
    Service("lock", "Lock the door", "lock", ((r.DOOR, "TEXT"),)),
    Service("clear_alarm", "Clear the door's alarms", "clear_alarm", ((r.DOOR, "TEXT"),)),
    Service("user_sync", "Synchronise users", "users_sync", (("phase", "ENUM"), ("users", "ARRAY"))),
    Service("user_set", "Add or change users", "user_set", (("user", "STRUCT"), ("users", "ARRAY"))),
    Service("user_delete", "Delete a user", "user_delete", (("id", "TEXT"),)),
    Service("raw", "Raw passthrough", "raw", (("data", "TEXT"),)),
)
SERVICE_BY_ID = {s.tsl_id: s for s in SERVICES}

# agent event type -> (level, TSL event id, TSL event name). Not listed: not an event for apps
# (command_result and raw have messages of their own in both APIs).
INFO, WARN, ERROR = "INFO", "WARN", "ERROR"
EVENTS: dict[str, tuple[str, str, str]] = {
    r.DOOR_FORCED: (ERROR, "door_forced", "Door forced open"),
    r.DOOR_TAMPER: (ERROR, "door_tamper", "Tamper input changed"),
    r.DOOR_HELD_OPEN: (WARN, "door_held_open", "Door held open"),
    r.ALARM_CLEARED: (INFO, "alarm_cleared", "Alarm cleared"),
    r.UNLOCKED: (INFO, "access_granted", "Door unlocked (access granted)"),
    r.ACCESS_DENIED: (INFO, "access_denied", "Access denied"),
    r.LOCKED: (INFO, "locked", "Door locked"),
    r.DOOR_OPENED: (INFO, "door_opened", "Door opened"),
    r.DOOR_CLOSED: (INFO, "door_closed", "Door closed"),
    r.REX: (INFO, "exit_button", "Exit button pressed"),
    r.DOOR_MODE: (INFO, "door_mode", "Door mode changed"),
    r.PUNCH: (INFO, "punch", "Attendance punch"),
}

RAW_COMMAND = "raw"   # the agent's raw passthrough command and event: {"data": base64}
RAW_MAX = 256         # bytes of data one raw command or event carries at most


def _text(value: Any) -> str:
    return "" if value is None else str(value)[:MAX_STRING]


def _event_attrs(event_type: str, p: dict) -> dict[str, Any]:
    if event_type == r.UNLOCKED:
        return {"lock_state": "unlocked", "unlock": True, "last_access": "granted",
                "last_access_user": _text(p.get(r.USER)), "last_access_source": _text(p.get(r.SOURCE)),
                "last_access_reason": _text(p.get(r.REASON))}
    if event_type == r.LOCKED:
        return {"lock_state": "locked", "unlock": False}
    if event_type == r.ACCESS_DENIED:
        return {"last_access": "denied", "last_access_user": _text(p.get(r.USER)),
                "last_access_source": _text(p.get(r.SOURCE)), "last_access_reason": _text(p.get(r.REASON))}
    if event_type == r.DOOR_OPENED:
        return {"door_position": "open"}
    if event_type == r.DOOR_CLOSED:
        # a held-open alarm ends with the door closing (agent/peripherals/door.py)
        return {"door_position": "closed", "alarm_held_open": False}
    if event_type == r.DOOR_FORCED:
        return {"alarm_forced": True}
    if event_type == r.DOOR_HELD_OPEN:
        return {"alarm_held_open": True}
    if event_type == r.DOOR_TAMPER:
        return {"alarm_tamper": bool(p.get(r.ACTIVE, True))}
    if event_type == r.ALARM_CLEARED:
        point = {ALARM_FORCED: "alarm_forced", ALARM_HELD_OPEN: "alarm_held_open",
                 ALARM_TAMPER: "alarm_tamper"}.get(p.get(r.ALARM))
        return {point: False} if point else {}
    if event_type == r.DOOR_MODE:
        mode = p.get(r.MODE)
        return {"door_mode": mode} if mode in MODES else {}
    if event_type == r.PUNCH:
        return {"last_punch_user": _text(p.get(r.USER)), "last_punch_time": _text(p.get(r.WHEN))}
    return {}


def attrs_from_broadcast(obj: dict) -> dict[str, Any]:
    """One hub broadcast (telemetry, event, device_status ...) -> the data
    points it changes ({} for none)."""
    if not isinstance(obj, dict):
        return {}
    kind = obj.get("type")
    payload = obj.get("payload")
    if kind == "device_status":
        return {"online": obj.get("status") == "online"}
    if kind == r.TELEMETRY and isinstance(payload, dict):
        out: dict[str, Any] = {}
        for name in ("temperature", "humidity"):
            value = payload.get(name)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                out[name] = value
        return out
    if kind == r.EVENT and isinstance(payload, dict) and isinstance(obj.get("event_type"), str):
        return _event_attrs(obj["event_type"], payload)
    return {}


def attrs_from_result(command: str, result: Any) -> dict[str, Any]:
    """A command that succeeded -> the data points it has changed, for an
    answer that must not wait for the device's event (a write's s2c_noti
    with res_sn): the event and the result travel separately."""
    if command == "unlock":
        return {"lock_state": "unlocked", "unlock": True}
    if command == "lock":
        return {"lock_state": "locked", "unlock": False}
    if command == "door_mode" and isinstance(result, dict) and result.get(r.MODE) in MODES:
        return {"door_mode": result[r.MODE]}
    return {}


def _check_type(point: Point, value: Any) -> None:
    if point.type == BOOL:
        ok = isinstance(value, bool)
    elif point.type == ENUM:
        ok = isinstance(value, str) and value in point.values
    elif point.type in (UINT16, INT16):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif point.type == FLOAT:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    else:
        ok = isinstance(value, str)
    if not ok:
        expected = f"one of {', '.join(point.values)}" if point.type == ENUM else f"a {point.type}"
        raise ValueError(f"data point '{point.name}' must be {expected}, got {_shown(value)}")


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def point(name: Any) -> Point:
    """The data point called `name` (a Gizwits name or a TSL id); ValueError naming it otherwise."""
    found = BY_NAME.get(name) or BY_TSL_ID.get(name) if isinstance(name, str) else None
    if found is None:
        raise ValueError(f"unknown data point {_shown(name)} (known: {', '.join(BY_NAME)})")
    return found


def commands_for_write(attrs: dict) -> list[tuple[str, dict]]:
    """An app's write (Gizwits c2s_write attrs, DC WRITE-ATTR kv; names or
    TSL ids) -> the agent commands that carry it out. ValueError naming
    the attribute for an unknown, read-only or wrongly typed one; nothing
    is sent unless every attribute is right."""
    if not isinstance(attrs, dict) or not attrs:
        raise ValueError("attrs must be a non-empty object of data point names and values")
    commands: list[tuple[str, dict]] = []
    for name, value in attrs.items():
        p = point(name)
        if not p.writable:
            raise ValueError(f"data point '{p.name}' is read-only (writable: "
                             f"{', '.join(q.name for q in POINTS if q.writable)})")
        _check_type(p, value)
        if p.name == "unlock":
            commands.append(("unlock", {}) if value else ("lock", {}))
        elif p.name == "door_mode":
            commands.append(("door_mode", {r.MODE: value}))
    return commands


def service_command(service_id: str, params: dict) -> tuple[str, dict]:
    """A service call (DC EXE-SERV) -> the agent command and its payload.
    ValueError for an unknown service or parameter (the agent checks values)."""
    service = SERVICE_BY_ID.get(service_id) if isinstance(service_id, str) else None
    if service is None:
        raise ValueError(f"unknown service {_shown(service_id)} (known: {', '.join(SERVICE_BY_ID)})")
    if not isinstance(params, dict):
        raise ValueError(f"the parameters of service '{service.tsl_id}' must be an object")
    known = {name for name, _ in service.params}
    for key in params:
        if key not in known:
            raise ValueError(f"service '{service.tsl_id}' takes no parameter {_shown(key)} "
                             f"(parameters: {', '.join(sorted(known)) or 'none'})")
    if service.command == "unlock" and r.DURATION_MS in params:
        ms = params[r.DURATION_MS]
        if not isinstance(ms, int) or isinstance(ms, bool) or not MIN_UNLOCK_MS <= ms <= MAX_UNLOCK_MS:
            raise ValueError(f"service 'unlock': {r.DURATION_MS} must be an integer from {MIN_UNLOCK_MS} "
                             f"to {MAX_UNLOCK_MS}")
    return service.command, dict(params)


def event_from_broadcast(obj: dict) -> tuple[str, str, dict] | None:
    """One hub broadcast -> (level INFO/WARN/ERROR, TSL event id, params)
    for an event apps hear of, or None."""
    if not isinstance(obj, dict) or obj.get("type") != r.EVENT:
        return None
    found = EVENTS.get(obj.get("event_type"))  # type: ignore[arg-type]
    payload = obj.get("payload")
    if found is None or not isinstance(payload, dict):
        return None
    level, event_id, _ = found
    if obj["event_type"] == r.DOOR_TAMPER and payload.get(r.ACTIVE) is False:
        level = INFO   # the tamper input restored
    return level, event_id, dict(payload)


def table_markdown() -> str:
    """The mapping as Markdown tables (README, docs/protocols/)."""
    lines = ["| Gizwits data point | TSL id | TSL name | type | writable | from the agent |",
             "|---|---|---|---|---|---|"]
    for p in POINTS:
        kind = f"{p.type} ({', '.join(p.values)})" if p.values else p.type
        lines.append(f"| `{p.name}` | `{p.tsl_id}` | {p.tsl_name} | {kind} / {p.tsl_type} | "
                     f"{'yes' if p.writable else 'no'} | {p.source} |")
    lines += ["", "| service (TSL id) | name | agent command | parameters |", "|---|---|---|---|"]
    for s in SERVICES:
        params = ", ".join(f"{n} ({t})" for n, t in s.params)
        lines.append(f"| `{s.tsl_id}` | {s.tsl_name} | `{s.command}` | {params} |")
    lines += ["", "| agent event | level | TSL event id | name |", "|---|---|---|---|"]
    for event_type, (level, event_id, name) in EVENTS.items():
        lines.append(f"| `{event_type}` | {level} | `{event_id}` | {name} |")
    return "\n".join(lines)
