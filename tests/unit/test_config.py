from agent import config
from agent.errors import ConfigError

from support import MICROPYTHON, raises, tmpdir, write_json

BOARD = {
    "name": "t", "chip": "host", "runtimes": ["micropython", "cpython"], "hal": "emulated",
    "heap_kb": 128, "emulator": {"host": "127.0.0.1", "port": 1},
    "peripherals": [{"type": "door", "relay_pin": 26, "sensor_pin": 27}, {"type": "climate"}],
}
SITE = {"server": "ws://127.0.0.1:1/ws", "device_id": "d1", "token": "t1"}


def _without(d, key):
    d = dict(d)
    del d[key]
    return d


def test_site_defaults_filled():
    path = write_json(tmpdir(), "site.json", SITE)
    site = config.load_site(path)
    assert site["heartbeat_s"] == 20
    assert site["uplink"] == "json_ws"
    assert site["max_frame"] == 16384


def test_site_missing_field_names_field_and_file():
    path = write_json(tmpdir(), "site.json", _without(SITE, "token"))
    e = raises(ConfigError, config.load_site, path)
    assert e.field == "token"
    assert path in str(e) and "'token'" in str(e) and "missing" in str(e)


def test_site_wrong_type_named():
    path = write_json(tmpdir(), "site.json", dict(SITE, heartbeat_s="fast"))
    e = raises(ConfigError, config.load_site, path)
    assert e.field == "heartbeat_s" and "number" in str(e)


def test_site_bad_url_and_unknown_field():
    d = tmpdir()
    e = raises(ConfigError, config.load_site, write_json(d, "a.json", dict(SITE, server="http://x")))
    assert e.field == "server"
    e = raises(ConfigError, config.load_site, write_json(d, "b.json", dict(SITE, tokn="x")))
    assert e.field == "tokn" and "not a known field" in str(e)


def test_site_server_override():
    path = write_json(tmpdir(), "site.json", SITE)
    assert config.load_site(path, "wss://cloud:443/ws")["server"] == "wss://cloud:443/ws"


def test_not_json_and_missing_file():
    d = tmpdir()
    e = raises(ConfigError, config.load_site, write_json(d, "s.json", "{not json"))
    assert "not valid JSON" in str(e)
    e = raises(ConfigError, config.load_site, d + "/nope.json")
    assert "cannot be read" in str(e)


def test_board_peripheral_field_path():
    bad = dict(BOARD, peripherals=[{"type": "door", "sensor_pin": 27}])
    e = raises(ConfigError, config.load_board, write_json(tmpdir(), "b.json", bad))
    assert e.field == "peripherals[0].relay_pin"


def test_board_bool_is_not_a_pin():
    bad = dict(BOARD, peripherals=[{"type": "door", "relay_pin": True, "sensor_pin": 27}])
    e = raises(ConfigError, config.load_board, write_json(tmpdir(), "b.json", bad))
    assert e.field == "peripherals[0].relay_pin"


def test_board_unknown_peripheral_type():
    bad = dict(BOARD, peripherals=[{"type": "laser"}])
    e = raises(ConfigError, config.load_board, write_json(tmpdir(), "b.json", bad))
    assert e.field == "peripherals[0].type" and "laser" in str(e)


def test_board_loads_with_defaults():
    board = config.load_board(write_json(tmpdir(), "b.json", BOARD))
    door = board["peripherals"][0]
    assert door["unlock_ms"] == 3000 and door["relay_active_high"] is True
    assert board["emulator"]["port"] == 1


def test_shipped_board_and_example_site_are_valid():
    board = config.load_board("boards/emulated.json")
    assert "micropython" in board["runtimes"]
    site = config.load_site("examples/site.json")
    assert site["server"].startswith("ws://")


def test_uplink_and_url_scheme_must_match():
    d = tmpdir()
    site = config.load_site(write_json(d, "h.json", dict(SITE, uplink="http", server="http://cloud:80")))
    assert site["uplink"] == "http" and site["gmt"] == 0
    e = raises(ConfigError, config.load_site, write_json(d, "x.json", dict(SITE, uplink="xml_ws",
                                                                         server="http://cloud")))
    assert e.field == "server" and "ws://" in str(e)
    e = raises(ConfigError, config.load_site, write_json(d, "y.json", dict(SITE, uplink="mqtt")))
    assert e.field == "uplink" and "xml_ws" in str(e)


def test_esp32_hal_is_accepted_an_unknown_one_refused():
    board = dict(_without(BOARD, "emulator"), hal="esp32", runtimes=["micropython"])
    assert config.load_board(write_json(tmpdir(), "b.json", board))["hal"] == "esp32"
    e = raises(ConfigError, config.load_board, write_json(tmpdir(), "b.json", dict(BOARD, hal="arduino")))
    assert e.field == "hal" and "must be one of" in str(e) and "esp32" in str(e)


def test_wifi_fields_checked_and_the_password_never_echoed():
    d = tmpdir()
    site = config.load_site(write_json(d, "s.json", dict(SITE, wifi={"ssid": "lobby", "password": "s3cret-pass"})))
    assert site["wifi"] == {"ssid": "lobby", "password": "s3cret-pass"}
    assert config.load_site(write_json(d, "o.json", dict(SITE, wifi={"ssid": "open"})))["wifi"]["password"] == ""
    assert config.load_site(write_json(d, "n.json", SITE))["wifi"] is None
    for wifi, field in (({"ssid": ""}, "wifi.ssid"), ({"ssid": "x" * 33}, "wifi.ssid"),
                        ({"password": "s3cret-pass"}, "wifi.ssid"),
                        ({"ssid": "lobby", "password": "s3cret"}, "wifi.password"),
                        ({"ssid": "lobby", "password": "s3cret-pass" * 6}, "wifi.password"),
                        ({"ssid": "lobby", "pasword": "s3cret-pass"}, "wifi.pasword"),
                        ("lobby:s3cret-pass", "wifi"), (["lobby", "s3cret-pass"], "wifi")):
        e = raises(ConfigError, config.load_site, write_json(d, "w.json", dict(SITE, wifi=wifi)))
        assert e.field == field, (wifi, e)
        assert "s3cret" not in str(e)


def test_heap_budget_only_where_it_means_something():
    d = tmpdir()
    e = raises(ConfigError, config.load_board, write_json(d, "a.json", _without(BOARD, "heap_kb")))
    assert e.field == "heap_kb" and "MicroPython" in str(e)
    pi = dict(_without(BOARD, "heap_kb"), runtimes=["cpython"])
    assert config.load_board(write_json(d, "b.json", pi))["heap_kb"] is None
    e = raises(ConfigError, config.load_board, write_json(d, "c.json", dict(pi, heap_kb=1024)))
    assert e.field == "heap_kb" and "means nothing on CPython" in str(e)
    e = raises(ConfigError, config.load_board, write_json(d, "d.json", dict(BOARD, runtimes=["jython"])))
    assert e.field == "runtimes"
    e = raises(ConfigError, config.load_board, write_json(d, "e.json", dict(BOARD, runtimes=[])))
    assert e.field == "runtimes"


def test_peripheral_defaults_are_declared_once():
    cfg = config.peripheral("fingerprint", {"port": "/dev/serial0"})
    assert cfg == {"type": "fingerprint", "name": "reader", "port": "/dev/serial0", "baud": 57600,
                   "address": 0xFFFFFFFF, "password": 0, "poll_ms": 200, "enrol_timeout_s": 15,
                   "mode": "toggle"}
    e = raises(ConfigError, config.peripheral, "fingerprint", {})
    assert e.field == "port"
    e = raises(ConfigError, config.peripheral, "periscope", {})
    assert e.field == "type"


def _tables():
    """(table name, field name, spec) for every field of every table."""
    tables = [("site", config.SITE_FIELDS), ("board", config.BOARD_FIELDS), ("emulator", config.EMULATOR_FIELDS),
              ("journal", config.JOURNAL_FIELDS)]
    for kind in config.PERIPHERAL_FIELDS:
        tables.append((kind, config.PERIPHERAL_FIELDS[kind]))
    for tname, fields in tables:
        for key in fields:
            yield tname, key, fields[key]


def test_every_numeric_field_has_a_range_holding_its_default():
    numeric = 0
    for tname, key, spec in _tables():
        types, _, default, _, rule = spec
        if types is bool or not (types is int or types == config._NUM):
            continue
        numeric += 1
        assert isinstance(rule, tuple) and len(rule) == 2 and rule[0] < rule[1], (tname, key)
        assert default is None or rule[0] <= default <= rule[1], (tname, key)
    assert numeric >= 20


def test_unlock_ms_range_is_the_unlock_commands():
    # A default the unlock command refuses would refuse every default unlock.
    from agent.peripherals import door
    assert config.PERIPHERAL_FIELDS["door"]["unlock_ms"][4] == (door.MIN_UNLOCK_MS, door.MAX_UNLOCK_MS)


SITE_OUT_OF_RANGE = [
    ("telemetry_interval_s", 1e-9), ("telemetry_interval_s", 0), ("telemetry_interval_s", 10 ** 9),
    ("heartbeat_s", 0), ("heartbeat_s", -1), ("heartbeat_s", 1e300), ("heartbeat_s", -1e300),
    ("connect_timeout_s", 0), ("write_timeout_s", 1e300), ("max_frame", 10), ("max_frame", 10 ** 12),
    ("backoff_base_s", 0), ("backoff_cap_s", 1e300), ("backoff_reset_s", -5), ("gmt", 15), ("gmt", -13),
    ("gmt", 10 ** 400),
]


def test_site_numbers_out_of_range_are_refused():
    d = tmpdir()
    for i, (key, value) in enumerate(SITE_OUT_OF_RANGE):
        e = raises(ConfigError, config.load_site, write_json(d, "s%d.json" % i, dict(SITE, **{key: value})))
        assert e.field == key and "must be from" in str(e), (key, value, str(e))


def test_nan_and_infinity_are_refused():
    # CPython's json reads NaN and Infinity (the range refuses them, naming
    # the field); MicroPython's refuses those literals as JSON. 1e999 reads
    # as infinity on both. Either way the agent does not start with
    # half-open detection silently off.
    d = tmpdir()
    for literal in ("NaN", "Infinity", "-Infinity", "1e999", "-1e999"):
        for key in ("heartbeat_s", "telemetry_interval_s", "gmt"):
            text = '{"server": "ws://h:1/ws", "device_id": "d1", "token": "t", "%s": %s}' % (key, literal)
            e = raises(ConfigError, config.load_site, write_json(d, "n.json", text))
            named = not MICROPYTHON or literal.endswith("1e999")
            assert e.field == (key if named else "-"), (literal, str(e))
            assert ("must be from" if named else "not valid JSON") in str(e)


def test_site_ranges_accept_their_bounds():
    d = tmpdir()
    low = {"telemetry_interval_s": 1, "heartbeat_s": 0.5, "connect_timeout_s": 1, "write_timeout_s": 1,
           "max_frame": 1024, "backoff_base_s": 0.05, "backoff_cap_s": 0.05, "backoff_reset_s": 1, "gmt": -12}
    assert config.load_site(write_json(d, "lo.json", dict(SITE, **low)))["max_frame"] == 1024
    high = {"telemetry_interval_s": 86400, "heartbeat_s": 3600, "connect_timeout_s": 300, "write_timeout_s": 300,
            "max_frame": 262144, "backoff_base_s": 60, "backoff_cap_s": 3600, "backoff_reset_s": 86400, "gmt": 14}
    assert config.load_site(write_json(d, "hi.json", dict(SITE, **high)))["gmt"] == 14


def test_backoff_cap_below_base_is_refused():
    path = write_json(tmpdir(), "s.json", dict(SITE, backoff_base_s=10, backoff_cap_s=5))
    e = raises(ConfigError, config.load_site, path)
    assert e.field == "backoff_cap_s"


def _door(**kw):
    door = {"type": "door", "relay_pin": 26, "sensor_pin": 27}
    door.update(kw)
    return door


BOARD_OUT_OF_RANGE = [
    ({"heap_kb": -5}, "heap_kb"), ({"heap_kb": 0}, "heap_kb"), ({"heap_kb": 10 ** 9}, "heap_kb"),
    ({"emulator": {"host": "127.0.0.1", "port": 99999}}, "emulator.port"),
    ({"emulator": {"host": "127.0.0.1", "port": 0}}, "emulator.port"),
    ({"journal": {"max_kb": 0}}, "journal.max_kb"), ({"journal": {"max_kb": 10 ** 12}}, "journal.max_kb"),
    ({"journal": {"segment_bytes": 10}}, "journal.segment_bytes"),
    ({"journal": {"segment_bytes": 10 ** 9}}, "journal.segment_bytes"),
    ({"peripherals": [_door(unlock_ms=-1)]}, "peripherals[0].unlock_ms"),
    ({"peripherals": [_door(unlock_ms=10 ** 9)]}, "peripherals[0].unlock_ms"),
    ({"peripherals": [_door(relay_pin=-1)]}, "peripherals[0].relay_pin"),
    ({"peripherals": [_door(sensor_pin=1000)]}, "peripherals[0].sensor_pin"),
    ({"peripherals": [_door(rex_level=2)]}, "peripherals[0].rex_level"),
    ({"peripherals": [_door(held_open_s=0)]}, "peripherals[0].held_open_s"),
    ({"peripherals": [_door(held_open_s=86401)]}, "peripherals[0].held_open_s"),
    ({"peripherals": [{"type": "climate", "interval_s": 1e-9}]}, "peripherals[0].interval_s"),
    ({"peripherals": [{"type": "climate", "interval_s": 1e300}]}, "peripherals[0].interval_s"),
    ({"peripherals": [{"type": "fingerprint", "port": "/dev/x", "baud": 0}]}, "peripherals[0].baud"),
    ({"peripherals": [{"type": "fingerprint", "port": "/dev/x", "address": 1 << 32}]}, "peripherals[0].address"),
    ({"peripherals": [{"type": "fingerprint", "port": "/dev/x", "password": -1}]}, "peripherals[0].password"),
    ({"peripherals": [{"type": "fingerprint", "port": "/dev/x", "poll_ms": 0}]}, "peripherals[0].poll_ms"),
    ({"peripherals": [{"type": "fingerprint", "port": "/dev/x", "enrol_timeout_s": -1}]},
     "peripherals[0].enrol_timeout_s"),
]


def test_board_numbers_out_of_range_are_refused():
    d = tmpdir()
    for i, (patch, field) in enumerate(BOARD_OUT_OF_RANGE):
        e = raises(ConfigError, config.load_board, write_json(d, "b%d.json" % i, dict(BOARD, **patch)))
        assert e.field == field and "must be from" in str(e), (patch, str(e))


def test_device_id_is_a_safe_folder_name():
    d = tmpdir()
    for bad in ("../escape", "", ".", "..", ".hidden", "a/b", "a\\b", "/abs", "x" * 65, "d\u00e9", "a b", "a\x00"):
        e = raises(ConfigError, config.load_site, write_json(d, "s.json", dict(SITE, device_id=bad)))
        assert e.field == "device_id", (bad, str(e))
        assert d + "/s.json" in str(e)
    for good in ("door-0001", "FK628001", "A.b_c-9", "x" * 64):
        assert config.load_site(write_json(d, "s.json", dict(SITE, device_id=good)))["device_id"] == good


def test_relative_paths_in_a_file_are_taken_from_its_folder():
    d = tmpdir()
    import os
    os.mkdir(d + "/cfg")
    board = config.load_board(write_json(d + "/cfg", "b.json", dict(BOARD, journal={"path": "j"})))
    assert board["journal"]["path"] == d + "/cfg/j"
    board = config.load_board(write_json(d + "/cfg", "b.json", BOARD))
    assert board["journal"]["path"] == d + "/cfg/journal"
    board = config.load_board(write_json(d + "/cfg", "b.json", dict(BOARD, journal={"path": "/var/j"})))
    assert board["journal"]["path"] == "/var/j"
    e = raises(ConfigError, config.load_board, write_json(d, "e.json", dict(BOARD, journal={"path": ""})))
    assert e.field == "journal.path"
    with open(d + "/cfg/ca.pem", "w") as f:
        f.write("-----BEGIN CERTIFICATE-----\n")
    site = config.load_site(write_json(d + "/cfg", "s.json", dict(SITE, ca_file="ca.pem")))
    assert site["ca_file"] == d + "/cfg/ca.pem"
    assert config.load_site(write_json(d + "/cfg", "s.json", SITE))["ca_file"] is None
    e = raises(ConfigError, config.load_site, write_json(d, "s.json", dict(SITE, ca_file="ca.pem")))
    assert e.field == "ca_file" and d + "/ca.pem" in str(e)
    # A file named with no folder: relative to where the agent runs.
    assert config.beside("b.json", "j") == "j" and config.beside("/b.json", "j") == "/j"


def test_shipped_boards_keep_their_journal_in_build():
    for name in ("emulated", "emulated-attendance"):
        assert config.load_board("boards/%s.json" % name)["journal"]["path"] == "boards/../build/journal"


def test_journal_folder_is_made_and_probed():
    import os
    d = tmpdir()
    board = {"journal": {"path": d + "/a/b/"}}
    folder = config.journal_folder(board, {"device_id": "d1"}, "b.json", "journal.path")
    assert folder == d + "/a/b/d1" and os.listdir(folder) == []  # made, and the probe is gone
    with open(d + "/flat", "w") as f:
        f.write("a file where the journal's folder should be")
    e = raises(ConfigError, config.journal_folder, {"journal": {"path": d + "/flat"}}, {"device_id": "d1"},
               "b.json", "journal.path")
    assert e.path == "b.json" and e.field == "journal.path"
    assert d + "/flat/d1" in str(e) and "cannot write" in str(e) and "[Errno 20]" in str(e)
