# Board and site configuration. A board file (boards/*.json) says what the
# hardware is; a site file says where the cloud is and who this device is.
# Every problem names the file and the field, because a technician fixes
# config in a text editor on a laptop, not in a debugger.
#
# A relative path inside a file (journal.path, ca_file) is taken from the
# folder of the file that names it, so a board or site file means the same
# wherever the agent is started from; a relative path on the command line
# is the caller's business (the shell's directory).
import json
import os

from agent import hal, log
from agent.errors import ConfigError

_NUM = (int, float)
_U32 = (0, 0xFFFFFFFF)
# Identifiers that become part of a file path (device_id names the
# journal's folder): a safe alphabet, no leading dot ("..", hidden files),
# so that no value can reach outside the folder it is meant for.
NAME = "name"
NAME_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-"
NAME_MAX = 64
# Telemetry (site) and a climate sensor's own interval. Every sample is a
# durable record: 1e-9 s was a busy loop of flash writes (21,000 records in
# 7 s) evicting real events. At 1 s a 64 KB journal holds about half an
# hour of samples beside the events, and its 16 flash sectors take about
# 1,000 erases a day: some years of a 100,000-cycle NOR chip. Faster wears
# the flash out in weeks. A day is the longest that still reads as "a sensor".
_INTERVAL = (1, 86400)

# field: (types, required, default, what it is - used in the error message, rule)
# rule: (min, max) for every numeric field (so NaN and the infinities stop
# at start too: they compare false with any bound); NAME for a string used
# in a file path; None otherwise.
SITE_FIELDS = {
    "server": (str, True, None, "the cloud URL, e.g. ws://host:8780/ws", None),
    "device_id": (str, True, None, "this device's id (XML DeviceSerialNo, HTTP sn)", NAME),
    "token": (str, True, None, "the device's secret token (XML CloudId)", None),
    "uplink": (str, False, "json_ws", "the cloud protocol: json_ws, xml_ws or http", None),
    "gmt": (_NUM, False, 0, "hours east of UTC of the site's wall clock (punch times)", (-12, 14)),
    "ca_file": (str, False, None, "PEM file of the CA(s) that sign the wss:// server's certificate", None),
    "telemetry_interval_s": (_NUM, False, 5, "seconds between sensor samples", _INTERVAL),
    "heartbeat_s": (_NUM, False, 20, "seconds between heartbeat pings", (0.5, 3600)),
    "connect_timeout_s": (_NUM, False, 10, "deadline for connect + register", (1, 300)),
    "write_timeout_s": (_NUM, False, 10, "deadline for one message write", (1, 300)),
    "max_frame": (int, False, 16384, "largest message accepted from the cloud (bytes)", (1024, 262144)),
    "backoff_base_s": (_NUM, False, 1, "first reconnect delay ceiling", (0.05, 60)),
    "backoff_cap_s": (_NUM, False, 30, "largest reconnect delay", (0.05, 3600)),
    "backoff_reset_s": (_NUM, False, 30, "connected time after which retries start over", (1, 86400)),
}

BOARD_FIELDS = {
    "name": (str, True, None, "the board's name", None),
    "chip": (str, True, None, "the chip or host, e.g. esp32, bcm2711, host", None),
    "runtimes": (list, True, None, "runtimes this board runs: micropython, cpython", None),
    "hal": (str, True, None, "pin adapter: emulated or gpiozero", None),
    # 64 KiB: less does not hold the agent's code; 16 MiB: the largest PSRAM
    # an ESP32 module carries.
    "heap_kb": (int, False, None, "MicroPython heap budget in KiB, MicroPython boards only", (64, 16384)),
    "peripherals": (list, True, None, "the peripherals wired to the board", None),
    "emulator": (dict, False, None, "host/port of the peripheral emulator", None),
    "journal": (dict, False, {}, "where and how large the record journal on flash is", None),
}

EMULATOR_FIELDS = {
    "host": (str, True, None, "emulator address", None),
    "port": (int, True, None, "emulator TCP port", (1, 65535)),
}

JOURNAL_FIELDS = {
    "path": (str, False, "journal", "folder on flash; one sub-folder per device id", None),
    "max_kb": (int, False, 64, "size cap; the oldest records are evicted beyond it", (1, 1048576)),
    # A segment is rewritten on every sync and read back one record at a
    # time: a few flash blocks, never more than a board can spare.
    "segment_bytes": (int, False, 4096, "segment file size (a few flash blocks)", (256, 65536)),
}

PERIPHERAL_FIELDS = {
    "door": {
        "name": (str, False, "door", "the door's name", None),
        "relay_pin": (int, True, None, "GPIO driving the lock relay", (0, 63)),
        "relay_active_high": (bool, False, True, "relay energised on a high level", None),
        "sensor_pin": (int, True, None, "GPIO of the door-position sensor", (0, 63)),
        "sensor_open_level": (int, False, 1, "pin level that means the door is open", (0, 1)),
        # The range of the unlock command's duration_ms (peripherals/door.py
        # MIN_UNLOCK_MS, MAX_UNLOCK_MS): a default outside it refuses every unlock.
        "unlock_ms": (int, False, 3000, "how long an unlock keeps the relay energised", (100, 60000)),
    },
    "fingerprint": {
        "name": (str, False, "reader", "the reader's name", None),
        "port": (str, True, None, "serial device of the ZFM module, e.g. /dev/serial0", None),
        # ZFM modules run at 9600 x N, N = 1..12.
        "baud": (int, False, 57600, "UART speed (ZFM modules default to 57600 8N1)", (9600, 115200)),
        "address": (int, False, 0xFFFFFFFF, "module address", _U32),
        "password": (int, False, 0, "module password (VfyPwd)", _U32),
        "poll_ms": (int, False, 200, "how often the sensor is checked for a finger", (20, 10000)),
        "enrol_timeout_s": (_NUM, False, 15, "how long enrolment waits for each finger placement", (1, 300)),
        "mode": (str, False, "toggle", "in/out state of punches: toggle, in or out", None),
    },
    "climate": {
        "name": (str, False, "climate", "the sensor's name", None),
        "interval_s": (_NUM, False, None, "seconds between samples (default: site telemetry_interval_s)",
                       _INTERVAL),
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


def _os_error(e):
    # MicroPython prints an errno it has no name for as a bare number ("20"),
    # which reads as nothing in a config error.
    text = str(e)
    return "[Errno %s]" % text if text.isdigit() else text


def _type_name(types):
    if isinstance(types, tuple):
        return "a number"
    return {str: "a string", int: "an integer", bool: "true or false",
            list: "a list", dict: "an object"}[types]


def _name_problem(val):
    """Why `val` cannot be a name in a file path, or None."""
    if not 1 <= len(val) <= NAME_MAX:
        return "must be 1 to %d characters long" % NAME_MAX
    if val[0] == ".":
        return "must not start with '.'"
    for c in val:
        if c not in NAME_CHARS:
            return "may hold only letters, digits, '.', '_' and '-' (it names a folder)"
    return None


def _check(path, obj, fields, prefix=""):
    out = {}
    for key in fields:
        types, required, default, what, rule = fields[key]
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
        if rule == NAME:
            problem = _name_problem(val)
            if problem:
                raise ConfigError(path, name, "%s, got %r" % (problem, val))
        elif rule is not None and not rule[0] <= val <= rule[1]:
            raise ConfigError(path, name, "must be from %s to %s (%s), got %r" % (rule[0], rule[1], what, val))
        out[key] = val
    for key in obj:
        if key not in fields:
            raise ConfigError(path, prefix + key, "is not a known field")
    return out


def beside(config_path, path):
    """`path` as named in the file at `config_path`: a relative one is taken
    from that file's folder."""
    if path.startswith("/"):
        return path
    cut = config_path.rfind("/")
    if cut < 0:
        return path
    return config_path[:cut + 1] + path


def read_json(path):
    try:
        with open(path) as f:
            text = f.read()
    except OSError as e:
        raise ConfigError(path, "-", "file cannot be read (%s)" % _os_error(e))
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
    if site["backoff_cap_s"] < site["backoff_base_s"]:
        raise ConfigError(path, "backoff_cap_s", "must not be below backoff_base_s (%s)" % site["backoff_base_s"])
    if site["ca_file"] is not None:
        ca = site["ca_file"] = beside(path, site["ca_file"])
        # Found now rather than at the first TLS handshake, where it would
        # read as a network fault and be retried for ever.
        try:
            open(ca, "rb").close()
        except OSError as e:
            raise ConfigError(path, "ca_file", "names %s, which cannot be read (%s)" % (ca, _os_error(e)))
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
    elif board["heap_kb"] is not None:
        raise ConfigError(path, "heap_kb", "means nothing on CPython (no fixed heap); remove it")
    if board["hal"] == "emulated":
        emu = board["emulator"]
        if emu is None:
            raise ConfigError(path, "emulator", "is missing (an emulated board needs host and port)")
        board["emulator"] = _check(path, emu, EMULATOR_FIELDS, "emulator.")
    journal = _check(path, board["journal"], JOURNAL_FIELDS, "journal.")
    if journal["max_kb"] * 1024 < 2 * journal["segment_bytes"]:
        raise ConfigError(path, "journal.max_kb", "must hold at least two segments")
    if not journal["path"]:
        raise ConfigError(path, "journal.path", "must name a folder")
    journal["path"] = beside(path, journal["path"])
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


PROBE = ".probe"   # neither a segment nor the cursor: the journal never reads it


def journal_folder(board, site, path, field):
    """The device's journal folder, made and probed (a file written, synced
    and deleted there): a journal that cannot write stops the agent now,
    instead of running on journaling nothing. `path` and `field` say where
    the folder was named. A full file system is not refused: the journal
    makes room by evicting its oldest records, and a device must start to
    deliver what it holds."""
    # The journal's own folder maker: the same folders, synced the same way.
    from agent.journal import ENOSPC, mkdirs
    # One journal per device identity: re-pointing a board at another
    # device id must not send the old device's records under the new name.
    folder = board["journal"]["path"].rstrip("/") + "/" + site["device_id"]
    probe = folder + "/" + PROBE
    try:
        mkdirs(folder)
        try:
            with open(probe, "wb") as f:
                f.write(b"doorlink")
                hal.sync_file(f)
        except OSError as e:
            if not e.args or e.args[0] != ENOSPC:
                raise
            log.warn("journal", "the file system is full: the oldest records will make room")
            try:
                os.remove(probe)
            except OSError:
                pass  # it was never created
            return folder
        os.remove(probe)
        hal.sync_dir(folder)
    except OSError as e:
        raise ConfigError(path, field, "names a folder the journal cannot write: %s (%s)"
                          % (folder, _os_error(e)))
    return folder
