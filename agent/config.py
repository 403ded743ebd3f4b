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
# in a file path; a list of the values a string may take; None otherwise.
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
    "wifi": (dict, False, None, "the Wi-Fi network an ESP32 joins: {\"ssid\", \"password\"}", None),
    "control": (dict, False, None, "the management channel (cloud control): {\"url\": \"ws://...\", ...}", None),
}

# The management channel (agent/uplinks/control.py). Its servers ping
# every 3 to 30 s: 30 s of silence means the link is gone (the seed's
# rule); shorter windows are for tests and fast-pinging servers.
CONTROL_FIELDS = {
    "url": (str, True, None, "the control server's ws:// or wss:// URL", None),
    "token": (str, False, None, "Bearer token for the control server (default: the site's token)", None),
    "key": (str, False, None, "shared secret: only requests signed with it are taken (16+ characters)", None),
    "max_message": (int, False, 16384, "largest request accepted (bytes; fits the board's heap)", (1024, 262144)),
    "liveness_s": (_NUM, False, 30, "seconds without any frame from the server before reconnecting", (1, 300)),
    "scripts": (bool, False, False, "let script/run run the scripts kept on flash (script/* store them either way)",
                None),
}
KEY_MIN = 16   # a control.key shorter than this is guessable

# 802.11 limits: an SSID is 1-32 bytes; a WPA2 passphrase 8-63 characters
# ("" for an open network).
SSID_MAX = 32
WIFI_PASSWORD = (8, 63)

BOARD_FIELDS = {
    "name": (str, True, None, "the board's name", None),
    "chip": (str, True, None, "the chip or host, e.g. esp32, bcm2711, host", None),
    "runtimes": (list, True, None, "runtimes this board runs: micropython, cpython", None),
    "hal": (str, True, None, "pin adapter: emulated, gpiozero or esp32", None),
    # 64 KiB: less does not hold the agent's code; 16 MiB: the largest PSRAM
    # an ESP32 module carries.
    "heap_kb": (int, False, None, "MicroPython heap budget in KiB, MicroPython boards only", (64, 16384)),
    "peripherals": (list, True, None, "the peripherals wired to the board", None),
    "emulator": (dict, False, None, "host/port of the peripheral emulator", None),
    "journal": (dict, False, {}, "where and how large the record journal on flash is", None),
    "health": (dict, False, {}, "watchdog, boot counter and safe mode", None),
    "access": (dict, False, {}, "the user store and offline access decisions", None),
}

# docs/door-controller.md, section 7. The watchdog is fed every quarter of
# its timeout: below 2 s a busy moment (a flash erase) would reset a healthy
# board. A run counts as stable after stable_s: long enough to have
# connected and served a while, short enough to leave safe mode soon.
HEALTH_FIELDS = {
    "watchdog_s": (_NUM, False, 30, "hardware watchdog timeout (ESP32 machine.WDT)", (2, 3600)),
    "safe_mode_after": (int, False, 3, "unstable boots in a row that start safe mode (0: never)", (0, 100)),
    "stable_s": (_NUM, False, 120, "healthy running time after which a boot counts as stable", (5, 86400)),
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
    # raw: agent/journal_raw.py, records programmed straight into a flash
    # partition of their own (ESP32), about 1.2 bytes on flash per byte kept
    # where LittleFS costs tens.
    "backend": (str, False, "file", "file (segment files on the file system) or raw (a flash partition)",
                ["file", "raw"]),
    "partition": (str, False, "journal", "raw backend: the data partition's label (elsewhere: an image file)",
                  NAME),
}

RAW_MIN_KB = 8   # the raw journal's ring: two 4 KiB sectors (its ack log takes two more)

# docs/door-controller.md section 5. A board's flash holds 10,000 users
# in about 1 MB (records and indexes); more would not fit an ESP32's
# file system partition beside the journal.
ACCESS_FIELDS = {
    # Default: the folder `.users` in journal.path (main.py), so that the
    # store follows the journal wherever --journal puts it.
    "path": (str, False, None, "folder of the user store on flash; one sub-folder per device id", None),
    "max_users": (int, False, 10000, "users the store holds at most", (1, 20000)),
    "pin_attempts": (int, False, 3, "wrong PINs in a row at a door before PINs are refused there", (1, 20)),
    "pin_lockout_s": (int, False, 60, "seconds PINs are refused at a door after too many wrong ones", (1, 86400)),
    # A person waits at the door meanwhile: a few seconds at most.
    "cloud_decides_ms": (int, False, 0, "ask a cloud that decides (CloudSolution access) first, waiting this "
                         "long before deciding locally (0: never ask)", (0, 5000)),
}

PERIPHERAL_FIELDS = {
    # docs/door-controller.md section 3. The name becomes part of property
    # names (front.lock): the file-name alphabet keeps them plain.
    "door": {
        "name": (str, False, "door", "the door's name", NAME),
        "relay_pin": (int, True, None, "GPIO driving the lock relay", (0, 63)),
        "relay_active_high": (bool, False, True, "relay energised on a high level", None),
        "unlock_energised": (bool, False, True, "the lock opens while the relay is energised "
                             "(a strike; false for a maglock wired to release without power)", None),
        "fail": (str, False, "secure", "the lock on a fault and in safe mode: secure (locked) or safe (released)",
                 ["secure", "safe"]),
        # The range of the unlock command's duration_ms (peripherals/door.py
        # MIN_UNLOCK_MS, MAX_UNLOCK_MS): a default outside it refuses every unlock.
        "unlock_ms": (int, False, 3000, "how long an unlock keeps the door unlocked", (100, 60000)),
        "sensor_pin": (int, False, None, "GPIO of the door-position sensor", (0, 63)),
        "sensor": (str, False, "nc", "door sensor contact with a pull-up: nc (reads 1 when open), "
                   "no (reads 0 when open) or none", ["nc", "no", "none"]),
        "debounce_ms": (int, False, 50, "how long a sensor or tamper level must hold to count", (0, 2000)),
        "rex_pin": (int, False, None, "GPIO of the exit button (request to exit)", (0, 63)),
        "rex_level": (int, False, 0, "exit button pin level when pressed (0: a button to ground)", (0, 1)),
        "tamper_pin": (int, False, None, "GPIO of the tamper switch", (0, 63)),
        "tamper_level": (int, False, 1, "tamper pin level when tampered with", (0, 1)),
        "held_open_s": (int, False, 30, "seconds open before the held-open alarm", (1, 86400)),
        "relock_on_close": (bool, False, True, "relock as soon as the door opened and closed again", None),
        "anti_passback_s": (int, False, 0, "seconds before the same user may pass this door again (0: off)",
                            (0, 86400)),
        "normal_open": (list, False, [], "weekly hours held unlocked: [[days_mask, start_minute, end_minute]]",
                        None),
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
        "mode": (str, False, "toggle", "in/out state of punches: toggle, in or out", ["toggle", "in", "out"]),
    },
    "wiegand": {
        "name": (str, False, "wiegand", "the reader's name", None),
        "d0_pin": (int, True, None, "GPIO of the reader's D0 (data 0) line", (0, 63)),
        "d1_pin": (int, True, None, "GPIO of the reader's D1 (data 1) line", (0, 63)),
        "door": (str, False, "door", "the door the reader is at", None),
        "mode": (str, False, "card", "what opens: card, card_pin, pin or card_or_pin",
                 ["card", "card_pin", "pin", "card_or_pin"]),
        "pin_timeout_s": (_NUM, False, 10, "seconds a half-typed PIN (or a card waiting for one) is kept",
                          (1, 300)),
        # Readers send a frame's bits 1-2 ms apart; 25 ms is well clear of
        # that, and beyond 500 ms two quick keypresses become one noise frame.
        "frame_gap_ms": (int, False, 100, "a frame ends after this long without a bit", (25, 500)),
    },
    # The terminal's screen (agent/peripherals/display.py): a frame buffer
    # the size of an SSD1306, at most 1 KB, and the panel it is written to
    # (agent/hal/ssd1306.py), if any: without "panel", the buffer only
    # (screen/snapshot reads it either way).
    "display": {
        "name": (str, False, "display", "the display's name", None),
        "width": (int, False, 128, "pixels across (an SSD1306: 128)", (16, 128)),
        "height": (int, False, 64, "pixels down (an SSD1306: 64 or 32)", (8, 64)),
        "door": (str, False, None, "the door it shows (default: the board's first door)", None),
        "panel": (str, False, None, "the panel driven over I2C (default: none, the buffer only)", ["ssd1306"]),
        "i2c_address": (int, False, 0x3C, "the panel's I2C address: 60 (0x3C) or 61 (0x3D)", (0x3C, 0x3D)),
        # ESP32: any output-capable GPIOs (not 6-11, the flash's; not 34-39,
        # inputs only); the DevKitC's usual I2C pair is the default.
        "scl_pin": (int, False, 22, "GPIO of the panel's SCL (esp32 hal)", (0, 33)),
        "sda_pin": (int, False, 21, "GPIO of the panel's SDA (esp32 hal)", (0, 33)),
        # Raspberry Pi: bus 1 is the header's GPIO 3 (SCL) and 2 (SDA); its
        # speed is the kernel's (dtparam=i2c_arm_baudrate), not set here.
        "i2c_bus": (int, False, 1, "I2C bus of the panel on a Pi (/dev/i2c-N)", (0, 255)),
        # The SSD1306 datasheet's fast mode; many modules take 1 MHz.
        "freq_hz": (int, False, 400000, "I2C clock of the panel (esp32 hal)", (10000, 1000000)),
    },
    "climate": {
        "name": (str, False, "climate", "the sensor's name", None),
        "interval_s": (_NUM, False, None, "seconds between samples (default: site telemetry_interval_s)",
                       _INTERVAL),
        # A change is seen only when the sensor is read; a DHT22 gives a new
        # reading at most every 2 s. Samples still never come faster than
        # one a second (_INTERVAL), however the deadband is set.
        "poll_s": (_NUM, False, 2, "seconds between sensor reads (a change beyond a deadband is sent at once)",
                   _INTERVAL),
        "deadband_c": (_NUM, False, 0.5, "a temperature change (C) beyond this is sent before the interval",
                       (0.01, 100)),
        "deadband_pct": (_NUM, False, 2, "a humidity change (%) beyond this is sent before the interval",
                         (0.01, 100)),
        # BME280 on a Raspberry Pi: bus 1 is the header's GPIO 2/3; the chip
        # answers at 0x76 (SDO to GND) or 0x77 (SDO to VDD), nowhere else.
        "i2c_bus": (int, False, 1, "I2C bus of a BME280 (/dev/i2c-N)", (0, 255)),
        "i2c_address": (int, False, 0x76, "I2C address of a BME280: 118 (0x76) or 119 (0x77)", (0x76, 0x77)),
        # DHT22 on an ESP32: one data line with a pull-up (the module's own).
        "pin": (int, False, None, "GPIO of a DHT22's data line (esp32 hal; required there)", (0, 63)),
    },
}

# uplink -> URL schemes it speaks
VALID_UPLINKS = {"json_ws": ("ws://", "wss://"), "xml_ws": ("ws://", "wss://"),
                 "http": ("http://", "https://")}
VALID_HALS = ("emulated", "gpiozero", "esp32")
RUNTIMES = ("micropython", "cpython")


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


def name_problem(val):
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
            problem = name_problem(val)
            if problem:
                raise ConfigError(path, name, "%s, got %r" % (problem, val))
        elif isinstance(rule, list):
            if val not in rule:
                raise ConfigError(path, name, "must be one of %s (%s), got %r" % (", ".join(rule), what, val))
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


def _wifi(path, obj):
    """The site's Wi-Fi fields, checked. No message repeats the password:
    a config error is printed, and a console log is no place for it."""
    for key in obj:
        if key not in ("ssid", "password"):
            raise ConfigError(path, "wifi." + key, "is not a known field (ssid, password)")
    ssid = obj.get("ssid")
    if not isinstance(ssid, str) or not 1 <= len(ssid.encode()) <= SSID_MAX:
        raise ConfigError(path, "wifi.ssid", "must be the network's name, 1 to %d bytes" % SSID_MAX)
    password = obj.get("password", "")
    low, high = WIFI_PASSWORD
    if not isinstance(password, str) or not (password == "" or low <= len(password) <= high):
        raise ConfigError(path, "wifi.password", "must be a WPA2 passphrase of %d to %d characters, "
                          "or \"\" for an open network" % (low, high))
    return {"ssid": ssid, "password": password}


def _control(path, obj, url):
    """The site's control table, checked; `url` (--control) enables the
    channel or replaces the file's URL. A key is never shown in a message."""
    if obj is None:
        if not url:
            return None
        obj = {}
    elif not isinstance(obj, dict):
        raise ConfigError(path, "control", "must be an object: {\"url\": \"ws://...\"}")
    if url:
        obj = dict(obj)
        obj["url"] = url
    key = obj.get("key")
    if key is not None and (not isinstance(key, str) or len(key) < KEY_MIN):
        raise ConfigError(path, "control.key", "must be a shared secret of at least %d characters" % KEY_MIN)
    cfg = _check(path, obj, CONTROL_FIELDS, "control.")
    if not (cfg["url"].startswith("ws://") or cfg["url"].startswith("wss://")):
        raise ConfigError(path, "control.url", "must start with ws:// or wss://, got %r" % cfg["url"])
    return cfg


def load_site(path, server=None, control=None):
    raw = read_json(path)
    if "wifi" in raw and not isinstance(raw["wifi"], dict):
        # Checked before the table's type check, whose message shows the value.
        raise ConfigError(path, "wifi", "must be an object: {\"ssid\": ..., \"password\": ...}")
    site = _check(path, raw, SITE_FIELDS)
    if server:
        site["server"] = server
    site["control"] = _control(path, raw.get("control"), control)
    if site["uplink"] not in VALID_UPLINKS:
        raise ConfigError(path, "uplink", "must be one of %s" % ", ".join(sorted(VALID_UPLINKS)))
    url = site["server"]
    schemes = VALID_UPLINKS[site["uplink"]]
    if not any(url.startswith(p) for p in schemes):
        raise ConfigError(path, "server", "must start with %s for uplink %s, got %r"
                          % (" or ".join(schemes), site["uplink"], url))
    if site["backoff_cap_s"] < site["backoff_base_s"]:
        raise ConfigError(path, "backoff_cap_s", "must not be below backoff_base_s (%s)" % site["backoff_base_s"])
    if site["wifi"] is not None:
        site["wifi"] = _wifi(path, site["wifi"])
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
    if kind == "display" and cfg["panel"] and (cfg["width"] != 128 or cfg["height"] not in (32, 64)):
        raise ConfigError(path, prefix + "height", "an SSD1306 panel is 128x64 or 128x32, not %dx%d: set width "
                          "and height to the panel's" % (cfg["width"], cfg["height"]))
    if kind == "door" and cfg["normal_open"]:   # none: the schedule code is not loaded (RAM)
        from agent.schedule import problem
        why = problem(cfg["normal_open"])
        if why:
            raise ConfigError(path, prefix + "normal_open", why)
    cfg["type"] = kind
    return cfg


def load_board(path):
    board = _check(path, read_json(path), BOARD_FIELDS)
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
    board["health"] = _check(path, board["health"], HEALTH_FIELDS, "health.")
    journal = _check(path, board["journal"], JOURNAL_FIELDS, "journal.")
    if journal["max_kb"] * 1024 < 2 * journal["segment_bytes"]:
        raise ConfigError(path, "journal.max_kb", "must hold at least two segments")
    if journal["backend"] == "raw" and journal["max_kb"] < RAW_MIN_KB:
        raise ConfigError(path, "journal.max_kb", "must be at least %d for the raw backend (two sectors of "
                          "records beside the acknowledgement log)" % RAW_MIN_KB)
    if not journal["path"]:
        raise ConfigError(path, "journal.path", "must name a folder")
    journal["path"] = beside(path, journal["path"])
    board["journal"] = journal
    access = _check(path, board["access"], ACCESS_FIELDS, "access.")
    if access["path"] is not None:
        if not access["path"]:
            raise ConfigError(path, "access.path", "must name a folder")
        access["path"] = beside(path, access["path"])
    board["access"] = access
    periph = []
    for i, p in enumerate(board["peripherals"]):
        prefix = "peripherals[%d]." % i
        if not isinstance(p, dict):
            raise ConfigError(path, prefix[:-1], "must be an object")
        rest = dict(p)
        kind = rest.pop("type", None)
        periph.append(peripheral(kind, rest, path, prefix))
    _pins_once(path, periph)
    board["peripherals"] = periph
    return board


def _pins_once(path, periph):
    """A GPIO named twice (a relay on a door sensor's pin, two readers on
    one line) is wired wrong on any chip: refused, naming both fields."""
    seen = {}
    for i, p in enumerate(periph):
        for key in sorted(p):   # the same first field on both runtimes
            pin = p[key]
            if pin is None or not (key == "pin" or key.endswith("_pin")):
                continue
            field = "peripherals[%d].%s" % (i, key)
            if pin in seen:
                raise ConfigError(path, field, "names GPIO %d, which %s already uses" % (pin, seen[pin]))
            seen[pin] = field


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
