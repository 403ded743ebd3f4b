# The first thing the agent does (agent/main.py's first statements): drive
# every door's relay to its locked level, before any import or file that
# can fail. A pin left floating through a slow or failed start can energise
# a relay - esp-rfid's users saw doors open during restarts. Only `json`
# and the hal's own pin primitive are used; the device objects made here
# are handed to the hal adapter (take), since a pin cannot be claimed
# twice. docs/door-controller.md, section 2.
import json
import os

# A board file is a few KB; a bigger one is not read into a small heap
# here (the normal start-up refuses it with a proper message).
MAX_BOARD_BYTES = 32768

claimed = {}   # pin -> machine.Pin / gpiozero device / level (emulated)
done = False   # lock_relays ran (a pin is claimed once: never twice)


def relay_level(cfg, energised):
    """The pin level that puts a door's relay in the `energised` state."""
    return 1 if energised == cfg.get("relay_active_high", True) else 0


def locked_energised(cfg):
    """A door is locked with its relay energised only when de-energising
    unlocks it (unlock_energised false: a maglock on NC contacts)."""
    return not cfg.get("unlock_energised", True)


def take(pin):
    """What safe boot claimed `pin` with, once; None if it did not."""
    return claimed.pop(pin, None)


def _doors(board_path):
    # Sized from the file, not read(MAX + 1): MicroPython allocates a read's
    # whole buffer up front, and 32 KB in one block may not be there.
    size = os.stat(board_path)[6]
    if size > MAX_BOARD_BYTES:
        return None, ()
    with open(board_path) as f:
        text = f.read(size)
    board = json.loads(text)
    parts = board.get("peripherals")
    if not isinstance(parts, list):
        return None, ()
    return board.get("hal"), [p for p in parts if isinstance(p, dict) and p.get("type") == "door"]


def _claim(kind, cfg):
    pin = cfg["relay_pin"]
    if not isinstance(pin, int) or isinstance(pin, bool):
        return   # gpiozero would take "GPIO17" or True (pin 1): only what config.py accepts
    for flag in ("relay_active_high", "unlock_energised"):
        # "false" (a string) is truthy: read as true it would drive an
        # active-low relay to its unlock level. What config.py would refuse,
        # safe boot leaves alone - the pin is not touched at all.
        if not isinstance(cfg.get(flag, True), bool):
            return
    energised = locked_energised(cfg)
    level = relay_level(cfg, energised)
    if kind == "esp32":
        import machine
        claimed[pin] = machine.Pin(pin, machine.Pin.OUT, value=level)
    elif kind == "gpiozero":
        from gpiozero import DigitalOutputDevice
        claimed[pin] = DigitalOutputDevice(pin, active_high=cfg.get("relay_active_high", True),
                                           initial_value=energised)
    elif kind == "emulated":
        claimed[pin] = level   # sent first once the emulator answers (hal/emulated.py)


def lock_relays(board_path):
    """Claim every door's relay pin at its locked level. Never raises: what
    goes wrong here the normal start-up reports a moment later, with the
    file and field named."""
    global done
    done = True
    try:
        kind, doors = _doors(board_path)
    except Exception:  # noqa: BLE001 - unreadable or not JSON: config.py says which, properly
        return
    for cfg in doors:
        try:
            _claim(kind, cfg)
        except Exception:  # noqa: BLE001, S110 - one bad door must not leave the others unlocked
            pass
