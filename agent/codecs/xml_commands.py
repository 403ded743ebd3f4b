# The XML biometric protocol's server commands, both ways, sans-IO: which
# Thing command each Request runs (LockControl, GetDeviceStatus, SetTime,
# and the user operations of codecs.xml_users), the tags its answer adds,
# and, for the bench, the Request that asks for a Thing command. A module
# of its own so the session and log code stays readable; codecs.xml_bio
# imports it at once (code before data: a module loaded at the first
# command, on a heap the journal has fragmented, may find no room).
from agent import records
from agent.codecs import xml_flat
from agent.codecs.values import as_int, epoch_wall, fields_epoch, is_int, parse_stamp, wall_epoch, wall_text

# LockControl modes (vendor numbering) -> the Thing command each one is.
# The protocol names no door: the door commands act on door 1, named
# (docs/door-controller.md section 5); Restart is the device's.
LOCK_MODES = {"forceopen": 1, "forceclose": 2, "normalopen": 3, "autorecover": 4,
              "restart": 5, "cancelwarning": 6}
LOCK_COMMANDS = (None, ("unlock", {"door": 1}), ("lock", {"door": 1}),
                 ("door_mode", {"door": 1, "mode": "normal_open"}), ("door_mode", {"door": 1, "mode": "normal"}),
                 ("reboot", {}), ("clear_alarm", {"door": 1}))
# Thing command -> the Operation that asks for it (and that its result answers).
COMMAND_OPS = {"unlock": "LockControl", "lock": "LockControl", "lock_control": "LockControl",
               "door_mode": "LockControl", "reboot": "LockControl", "clear_alarm": "LockControl",
               "status": "GetDeviceStatus", "set_time": "SetTime", "user_set": "SetUserData",
               "user_get": "GetUserData", "user_delete": "DeleteUser", "users_clear": "EmptyUserEnrollmentData",
               "user_list": "GetNextUserData"}
USER_OPS = ("SetUserData", "GetUserData", "DeleteUser", "EmptyUserEnrollmentData", "GetFirstUserData",
            "GetNextUserData")
ANSWERED = ("LockControl", "GetDeviceStatus", "SetTime") + USER_OPS
# Alarm flags of GetDeviceStatus (vendor numbering); Duress (1) is never
# raised: no part of doorlink knows a duress code.
ALARM_FLAGS = {"tamper": 2, "forced": 4, "held_open": 8}
LOG_OVERFLOW = 16


def request(op, f, gmt):
    """A Request's Operation and tags -> (Thing command, payload), or None
    for an operation this device does not run; ValueError (the answer's
    Reason) when a tag cannot be used."""
    if op == "LockControl":
        mode = f.get("Mode", "")
        n = LOCK_MODES.get(mode.strip().lower()) or as_int(mode)
        if n is None:
            raise ValueError("LockControl without a valid Mode (%r)" % mode[:20])
        if not 1 <= n < len(LOCK_COMMANDS):
            raise ValueError("LockControl Mode %d is not one of 1-6" % n)
        name, payload = LOCK_COMMANDS[n]
        return name, dict(payload)
    if op == "GetDeviceStatus":
        return "status", {}
    if op == "SetTime":
        raw = f.get("Time") or f.get("DevTime") or f.get("ServerTime") or ""
        got = parse_stamp(raw)
        if got is None:
            raise ValueError("SetTime without a readable Time")
        if got[1] is not None and raw.strip()[-1:] not in ("Z", "z"):
            # An explicit +hh:mm names an instant; a bare time (or one
            # with the Z terminals write on local times) is wall clock.
            return "set_time", {"epoch": fields_epoch(got[0], got[1])}
        return "set_time", {"time": wall_text(got[0])}
    if op in USER_OPS:
        from agent.codecs import xml_users
        try:
            return xml_users.request(op, f, gmt)
        except ValueError as e:
            raise ValueError("%s refused: %s" % (op, e))
    return None


def answer_tags(name, result, gmt):
    """The tags a successful answer to Thing command `name` carries after
    its Result: a user's tags, or the result's plain values (and, for
    status, the door's)."""
    if name in ("user_get", "user_list"):
        from agent.codecs import xml_users
        return xml_users.answer_tags(name, result, gmt)
    fields = door_tags(result) if name == "status" else []
    for key in sorted(result):
        value = result[key]
        if isinstance(value, bool):
            value = 1 if value else 0
        if xml_flat.is_name(key) and isinstance(value, (str, int, float)):
            fields.append((key, value))
    return fields


def door_tags(result):
    """GetDeviceStatus's door tags from the status command's properties
    (`<door>.door`, `.lock`, `.alarms`). The protocol knows one door: on a
    board with several, a door open anywhere is DoorStatus open and the
    alarms of all doors are or-ed."""
    props = result.get("properties")
    if not isinstance(props, dict):
        return []
    doors, locks, alarms = [], [], 0
    for key in props:
        value = props[key]
        if key.endswith(".door"):
            doors.append(value)
        elif key.endswith(".lock"):
            locks.append(value)
        elif key.endswith(".alarms") and isinstance(value, list):
            for a in value:
                alarms |= ALARM_FLAGS.get(a, 0)
    if not doors:
        return []
    journal = result.get("journal")
    stats = journal.get("stats") if isinstance(journal, dict) else None
    if isinstance(stats, dict) and stats.get("evicted"):
        alarms |= LOG_OVERFLOW
    door = "open" if "open" in doors else ("closed" if "closed" in doors else "unknown")
    return [("DoorStatus", door), ("LockStatus", "unlocked" if "unlocked" in locks else "locked"),
            ("AlarmStatus", alarms)]


# -- the server's side (the bench) ---------------------------------------------

def server_request(command, payload, trans_id):
    """The Request that asks a terminal to run Thing `command` (what
    request() reads back), or None when the protocol has no way to say it;
    ValueError (naming the field) when a user's field could never be read
    back."""
    op = COMMAND_OPS.get(command)
    if op is None:
        return None
    fields = [("Operation", op)]
    if command in ("unlock", "lock", "reboot", "clear_alarm", "door_mode"):
        if is_int(payload.get("door")) and payload["door"] != 1:
            return None   # the protocol names no door: LockControl is door 1's
        mode = _lock_mode(command, payload)
        if mode is None:
            return None
        fields.append(("Mode", str(mode)))
    elif command in ("user_set", "user_get", "user_delete", "user_list", "users_clear"):
        from agent.codecs import xml_users
        more = xml_users.server_fields(command, payload)
        if more is None:
            return None
        if command == "user_list" and not more:
            fields = [("Operation", "GetFirstUserData")]
        fields += more
    elif command == "lock_control":
        mode = as_int(payload.get("mode"))
        if mode is None:
            return None
        fields.append(("Mode", str(mode)))
    elif command == "set_time":
        # An instant (an epoch, a time with a zone) goes with an explicit
        # +00:00; a bare wall-clock time as it is.
        epoch = payload.get("epoch")
        got = parse_stamp(payload.get("time"))
        if not is_int(epoch) and got is not None and got[1] is not None:
            epoch = wall_epoch(payload.get("time"), 0, trust_zone=True)
        if is_int(epoch):
            if not records.plausible_time(epoch):
                return None
            fields.append(("Time", epoch_wall(epoch) + "+00:00"))
        elif got is not None:
            fields.append(("Time", wall_text(got[0])))
        else:
            return None
    fields.append(("TransID", str(trans_id)))
    return xml_flat.encode("Request", fields)


def _lock_mode(command, payload):
    """The LockControl Mode that runs a door command, or None."""
    mode = payload.get("mode") if command == "door_mode" else None
    for n in range(1, len(LOCK_COMMANDS)):
        cmd, args = LOCK_COMMANDS[n]
        if cmd == command and args.get("mode") == mode:
            return n
    return None
