# Board and site configuration. A board file (boards/*.json) says what the
# hardware is; a site file says where the cloud is and who this device is.
# Every problem names the file and the field, because a technician fixes
# config in a text editor on a laptop, not in a debugger.
import json

from agent.errors import ConfigError

_NUM = (int, float)

# field: (types, required, default, what it is — used in the error message)
SITE_FIELDS = {
    "server": (str, True, None, "the cloud URL, e.g. ws://host:8780/ws"),
    "device_id": (str, True, None, "this device's id (XML DeviceSerialNo, HTTP sn)"),
    "token": (str, True, None, "the device's secret token (XML CloudId)"),
    "uplink": (str, False, "json_ws", "the cloud protocol: json_ws, xml_ws or http"),
    "gmt": (_NUM, False, 0, "hours east of UTC of the site's wall clock (punch times)"),
    "ca_file": (str, False, None, "PEM file of the CA(s) that sign the wss:// server's certificate"),
    "telemetry_interval_s": (_NUM, False, 5, "seconds between sensor samples"),
    "heartbeat_s": (_NUM, False, 20, "seconds between heartbeat pings"),
    "connect_timeout_s": (_NUM, False, 10, "deadline for connect + register"),
    "write_timeout_s": (_NUM, False, 10, "deadline for one message write"),
    "max_frame": (int, False, 16384, "largest message accepted from the cloud (bytes)"),
    "backoff_base_s": (_NUM, False, 1, "first reconnect delay ceiling"),
    "backoff_cap_s": (_NUM, False, 30, "largest reconnect delay"),
    "backoff_reset_s": (_NUM, False, 30, "connected time after which retries start over"),
}

BOARD_FIELDS = {
    "name": (str, True, None, "the board's name"),
    "chip": (str, True, None, "the chip or host, e.g. esp32, bcm2711, host"),
    "runtimes": (list, True, None, "runtimes this board runs: micropython, cpython"),
    "hal": (str, True, None, "pin adapter: emulated or gpiozero"),
    "heap_kb": (int, False, None, "MicroPython heap budget in KiB (MicroPython boards only)"),
    "peripherals": (list, True, None, "the peripherals wired to the board"),
    "emulator": (dict, False, None, "host/port of the peripheral emulator"),
    "journal": (dict, False, {}, "where and how large the record journal on flash is"),
}

JOURNAL_FIELDS = {
    "path": (str, False, "journal", "folder on flash; one sub-folder per device id"),
    "max_kb": (int, False, 64, "size cap; the oldest records are evicted beyond it"),
    "segment_bytes": (int, False, 4096, "segment file size (a few flash blocks)"),
}

PERIPHERAL_FIELDS = {
    "door": {
        "name": (str, False, "door", "the door's name"),
        "relay_pin": (int, True, None, "GPIO driving the lock relay"),
        "relay_active_high": (bool, False, True, "relay energised on a high level"),
        "sensor_pin": (int, True, None, "GPIO of the door-position sensor"),
        "sensor_open_level": (int, False, 1, "pin level that means the door is open"),
        "unlock_ms": (int, False, 3000, "how long an unlock keeps the relay energised"),
    },
    "fingerprint": {
        "name": (str, False, "reader", "the reader's name"),
        "port": (str, True, None, "serial device of the ZFM module, e.g. /dev/serial0"),
        "baud": (int, False, 57600, "UART speed (ZFM modules default to 57600 8N1)"),
        "address": (int, False, 0xFFFFFFFF, "module address"),
        "password": (int, False, 0, "module password (VfyPwd)"),
        "poll_ms": (int, False, 200, "how often the sensor is checked for a finger"),
        "enrol_timeout_s": (_NUM, False, 15, "how long enrolment waits for each finger placement"),
        "mode": (str, False, "toggle", "in/out state of punches: toggle, in or out"),
    },
    "climate": {
        "name": (str, False, "climate", "the sensor's name"),
        "interval_s": (_NUM, False, None, "seconds between samples (default: site telemetry_interval_s)"),
    },
}

# uplink -> URL schemes it speaks
VALID_UPLINKS = {"json_ws": ("ws://", "wss://"), "xml_ws": ("ws://", "wss://"),
                 "http": ("http://", "https://")}
VALID_HALS = ("emulated", "gpiozero")
RUNTIMES = ("micropython", "cpython")
# Named here so that a board file naming them is told what stands, rather
# than "unknown": the hal is planned, not there yet.
PLANNED_HALS = {"esp32": "the ESP32 hal (machine.Pin, UART, Wi-Fi, watchdog) is not there yet; "
                         "run this board's peripherals emulated (hal emulated) until it is"}


def _type_name(types):
    if isinstance(types, tuple):
        return "a number"
    return {str: "a string", int: "an integer", bool: "true or false",
            list: "a list", dict: "an object"}[types]


def _check(path, obj, fields, prefix=""):
    out = {}
    for key in fields:
        types, required, default, what = fields[key]
        name = prefix + key
        if key not in obj:
            if required:
                raise ConfigError(path, name, "is missing (%s)" % what)
            out[key] = default
            continue
        val = obj[key]
        # bool is an int in Python; a flag must not pass for a pin number.
        ok = isinstance(val, types) and not (types is not bool and isinstance(val, bool))
        if not ok:
            raise ConfigError(path, name, "must be %s (%s), got %r" % (_type_name(types), what, val))
        out[key] = val
    for key in obj:
        if key not in fields:
            raise ConfigError(path, prefix + key, "is not a known field")
    return out


def read_json(path):
    try:
        with open(path) as f:
            text = f.read()
    except OSError as e:
        raise ConfigError(path, "-", "file cannot be read (%s)" % e)
    try:
        data = json.loads(text)
    except ValueError as e:
        raise ConfigError(path, "-", "is not valid JSON (%s)" % e)
    if not isinstance(data, dict):
        raise ConfigError(path, "-", "must hold a JSON object")
    return data


def load_site(path, server=None):
    site = _check(path, read_json(path), SITE_FIELDS)
    if server:
        site["server"] = server
    if site["uplink"] not in VALID_UPLINKS:
        raise ConfigError(path, "uplink", "must be one of %s" % ", ".join(sorted(VALID_UPLINKS)))
    url = site["server"]
    schemes = VALID_UPLINKS[site["uplink"]]
    if not any(url.startswith(p) for p in schemes):
        raise ConfigError(path, "server", "must start with %s for uplink %s, got %r"
                          % (" or ".join(schemes), site["uplink"], url))
    for key in ("telemetry_interval_s", "heartbeat_s", "connect_timeout_s", "write_timeout_s", "max_frame",
                "backoff_base_s", "backoff_cap_s"):
        if site[key] <= 0:
            raise ConfigError(path, key, "must be greater than 0")
    return site


def peripheral(kind, fields, path="-", prefix=""):
    """One peripheral's settings, checked, with every default filled in: the
    peripheral reads cfg[key] and declares no default of its own."""
    if kind not in PERIPHERAL_FIELDS:
        raise ConfigError(path, prefix + "type", "must be one of %s, got %r"
                          % (", ".join(sorted(PERIPHERAL_FIELDS)), kind))
    cfg = _check(path, fields, PERIPHERAL_FIELDS[kind], prefix)
    cfg["type"] = kind
    return cfg


def load_board(path):
    board = _check(path, read_json(path), BOARD_FIELDS)
    if board["hal"] in PLANNED_HALS:
        raise ConfigError(path, "hal", "%r is not supported yet: %s" % (board["hal"], PLANNED_HALS[board["hal"]]))
    if board["hal"] not in VALID_HALS:
        raise ConfigError(path, "hal", "must be one of %s" % ", ".join(VALID_HALS))
    runtimes = board["runtimes"]
    if not runtimes or [r for r in runtimes if r not in RUNTIMES]:
        raise ConfigError(path, "runtimes", "must list one or more of %s, got %r" % (", ".join(RUNTIMES), runtimes))
    if "micropython" in runtimes:
        if board["heap_kb"] is None:
            raise ConfigError(path, "heap_kb", "is missing (a MicroPython board runs within a heap budget)")
        if board["heap_kb"] < 16:
            raise ConfigError(path, "heap_kb", "must be at least 16")
    elif board["heap_kb"] is not None:
        raise ConfigError(path, "heap_kb", "means nothing on CPython (no fixed heap); remove it")
    if board["hal"] == "emulated":
        emu = board["emulator"]
        if emu is None:
            raise ConfigError(path, "emulator", "is missing (an emulated board needs host and port)")
        board["emulator"] = _check(path, emu, {
            "host": (str, True, None, "emulator address"),
            "port": (int, True, None, "emulator TCP port"),
        }, "emulator.")
    journal = _check(path, board["journal"], JOURNAL_FIELDS, "journal.")
    if journal["segment_bytes"] < 256:
        raise ConfigError(path, "journal.segment_bytes", "must be at least 256")
    if journal["max_kb"] * 1024 < 2 * journal["segment_bytes"]:
        raise ConfigError(path, "journal.max_kb", "must hold at least two segments")
    board["journal"] = journal
    periph = []
    for i, p in enumerate(board["peripherals"]):
        prefix = "peripherals[%d]." % i
        if not isinstance(p, dict):
            raise ConfigError(path, prefix[:-1], "must be an object")
        rest = dict(p)
        kind = rest.pop("type", None)
        periph.append(peripheral(kind, rest, path, prefix))
    board["peripherals"] = periph
    return board
