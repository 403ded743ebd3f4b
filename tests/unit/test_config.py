from agent import config
from agent.errors import ConfigError

from support import raises, tmpdir, write_json

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


def test_esp32_hal_is_refused_until_it_exists():
    e = raises(ConfigError, config.load_board, write_json(tmpdir(), "b.json", dict(BOARD, hal="esp32")))
    assert e.field == "hal" and "not supported yet" in str(e) and "emulated" in str(e)
    e = raises(ConfigError, config.load_board, write_json(tmpdir(), "b.json", dict(BOARD, hal="arduino")))
    assert e.field == "hal" and "must be one of" in str(e)


def test_heap_budget_only_where_it_means_something():
    d = tmpdir()
    e = raises(ConfigError, config.load_board, write_json(d, "a.json", _without(BOARD, "heap_kb")))
    assert e.field == "heap_kb" and "MicroPython" in str(e)
    pi = dict(_without(BOARD, "heap_kb"), runtimes=["cpython"])
    assert config.load_board(write_json(d, "b.json", pi))["heap_kb"] is None
    e = raises(ConfigError, config.load_board, write_json(d, "c.json", dict(pi, heap_kb=65536)))
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
