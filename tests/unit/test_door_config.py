# A door's board fields on both runtimes: every default filled in, and a
# wrong value stopped at start with the field named (a technician fixes it
# in a text editor, not in a debugger).
from agent import config
from agent.errors import ConfigError

from support import raises

DOOR = {"relay_pin": 26}


def test_a_relay_alone_is_a_door_with_every_default():
    cfg = config.peripheral("door", dict(DOOR))
    assert cfg["sensor_pin"] is None and cfg["rex_pin"] is None and cfg["tamper_pin"] is None
    assert (cfg["relay_active_high"], cfg["unlock_energised"], cfg["fail"]) == (True, True, "secure")
    assert (cfg["unlock_ms"], cfg["sensor"], cfg["debounce_ms"], cfg["held_open_s"]) == (3000, "nc", 50, 30)
    assert (cfg["rex_level"], cfg["tamper_level"], cfg["relock_on_close"]) == (0, 1, True)
    assert cfg["anti_passback_s"] == 0 and cfg["normal_open"] == []


def test_wrong_door_fields_are_refused_by_name():
    for fields, field, said in (
            ({"sensor": "NC"}, "sensor", "must be one of nc, no, none"),
            ({"fail": "open"}, "fail", "must be one of secure, safe"),
            ({"unlock_energised": 1}, "unlock_energised", "must be true or false"),
            ({"name": "front door"}, "name", "letters, digits"),
            ({"normal_open": [[0, 0, 60]]}, "normal_open", "days_mask"),
            ({"normal_open": [[1, 0, 60]] * 9}, "normal_open", "at most 8"),
            ({"normal_open": "weekdays"}, "normal_open", "must be a list"),
            ({"debounce_ms": 5000}, "debounce_ms", "must be from 0 to 2000")):
        e = raises(ConfigError, config.peripheral, "door", dict(DOOR, **fields), "b.json", "peripherals[0].")
        assert e.field == "peripherals[0]." + field and said in str(e), (fields, str(e))


def test_normal_open_hours_pass_as_written():
    hours = [[0x1F, 480, 1020], [0x20, 540, 720]]
    assert config.peripheral("door", dict(DOOR, normal_open=hours))["normal_open"] == hours
