# What a door must not forget across a restart, a crash or a power cut:
# the mode the cloud set (a lockdown that a restart silently lifted would
# let cards in again), the latched forced and tamper alarms, and the
# settings the cloud tuned (unlock_ms, held_open_s). One small file per
# door in the board's journal.path, written by agent/small_file.py (the old
# state or the new, never a torn one); a dot first, so no device id - no
# journal folder - has its name. docs/door-controller.md, section 3.
import json

from agent import small_file

PREFIX = ".door."
MAX_BYTES = 160     # the longest state written is about 90 bytes: anything longer is not ours


def _int(v, low, high):
    return isinstance(v, int) and not isinstance(v, bool) and low <= v <= high


def load(folder, door, rules):
    """The state kept for `door` -> {"mode", "alarms", "unlock_ms",
    "held_open_s"}, or None when none was ever kept. ValueError naming
    what is wrong when the file is there but is not a state this module
    wrote (unreadable, too long, not JSON, a field missing or out of range).
    `rules`: (modes, alarms kept, unlock_ms range, held_open_s range), from
    the door (peripherals/door.py STATE_RULES: it owns them)."""
    modes, kept_alarms, unlock_ms, held_open_s = rules
    try:
        data = small_file.read(folder, PREFIX + door, MAX_BYTES)
    except OSError as e:
        raise ValueError("unreadable: %s" % e)
    if data is None:
        return None
    if len(data) > MAX_BYTES:
        raise ValueError("longer than %d bytes" % MAX_BYTES)
    try:
        state = json.loads(data)
    except (ValueError, UnicodeError):   # MicroPython's UnicodeError is no ValueError
        raise ValueError("not JSON")
    if not isinstance(state, dict) or len(state) != 4:
        raise ValueError("not a door state")
    alarms = state.get("alarms")
    if state.get("mode") not in modes:
        raise ValueError("mode")
    if not isinstance(alarms, list) or len(alarms) > len(kept_alarms) or \
            any(a not in kept_alarms or alarms.count(a) > 1 for a in alarms):
        raise ValueError("alarms")
    if not _int(state.get("unlock_ms"), unlock_ms[0], unlock_ms[1]):
        raise ValueError("unlock_ms")
    if not _int(state.get("held_open_s"), held_open_s[0], held_open_s[1]):
        raise ValueError("held_open_s")
    return state


def save(folder, door, mode, alarms, unlock_ms, held_open_s):
    """Keep the door's state, `alarms` those that outlive a restart
    (OSError when the flash refuses)."""
    small_file.write(folder, PREFIX + door, json.dumps(
        {"mode": mode, "alarms": alarms, "unlock_ms": unlock_ms, "held_open_s": held_open_s}))
