# Safe at boot: every door's relay claimed at its locked level from the
# board file alone, before the agent's config code runs; nothing in a
# broken or hostile board file makes it raise.
from agent.hal import safe_boot

from support import tmpdir, write_json


def _board(doors, hal="emulated"):
    parts = [dict({"type": "door"}, **d) for d in doors] + [{"type": "climate", "name": "lobby"}]
    return {"name": "b", "hal": hal, "peripherals": parts}


def _lock(board):
    safe_boot.claimed.clear()
    path = write_json(tmpdir(), "board.json", board)
    assert safe_boot.lock_relays(path) is None
    return dict(safe_boot.claimed)


def test_each_relay_is_held_at_its_locked_level_for_every_polarity():
    claimed = _lock(_board([
        {"relay_pin": 26},                                                  # strike, active high: 0
        {"relay_pin": 25, "relay_active_high": False},                      # strike, active low: 1
        {"relay_pin": 33, "unlock_energised": False},                       # maglock: energised = 1
        {"relay_pin": 32, "unlock_energised": False, "relay_active_high": False},   # maglock, active low: 0
    ]))
    assert claimed == {26: 0, 25: 1, 33: 1, 32: 0}


def test_the_hal_takes_a_claimed_pin_once():
    _lock(_board([{"relay_pin": 26}]))
    assert safe_boot.take(26) == 0
    assert safe_boot.take(26) is None   # a pin is claimed once: the second output() makes its own
    assert safe_boot.take(5) is None    # not a relay


def test_relay_level_is_the_one_rule_for_pin_levels():
    assert safe_boot.relay_level({}, True) == 1
    assert safe_boot.relay_level({"relay_active_high": False}, True) == 0
    assert safe_boot.relay_level({"relay_active_high": False}, False) == 1
    assert safe_boot.locked_energised({}) is False
    assert safe_boot.locked_energised({"unlock_energised": False}) is True


def test_a_hostile_board_file_claims_what_it_can_and_never_raises():
    folder = tmpdir()
    cases = [
        "not json {",
        "[1, 2]",
        '{"hal": "emulated", "peripherals": {"type": "door"}}',
        '{"hal": "emulated", "peripherals": ["door", 3, null]}',
        '{"hal": "esp32", "peripherals": [{"type": "door", "relay_pin": 4}]}',   # no machine here... or there
        '{"hal": "gpiozero", "peripherals": [{"type": "door", "relay_pin": "GPIO17"}]}',
        '{"hal": "emulated", "peripherals": [{"type": "door", "relay_pin": true}]}',
        '{"hal": "emulated", "peripherals": [' + ", ".join(['{"type": "door", "relay_pin": 1}'] * 5000) + "]}",
    ]
    for text in cases:
        safe_boot.claimed.clear()
        path = write_json(folder, "board.json", text)
        assert safe_boot.lock_relays(path) is None, text[:60]
        assert safe_boot.claimed == {}, (text[:60], safe_boot.claimed)
    safe_boot.claimed.clear()
    assert safe_boot.lock_relays(folder + "/missing.json") is None


def test_one_bad_door_does_not_leave_the_next_one_unclaimed():
    claimed = _lock(_board([{"relay_pin": "26"}, {}, {"relay_pin": 27}]))
    assert claimed == {27: 0}


def test_a_polarity_config_would_refuse_leaves_the_pin_alone():
    # "false" is a truthy string: read as "active high" it drives an
    # active-low relay to 0 - energised, a strike open - and the agent then
    # exits on the config error with the pin left there, restart after
    # restart. A flag that is not a JSON boolean claims nothing.
    claimed = _lock(_board([
        {"relay_pin": 26, "relay_active_high": "false"},
        {"relay_pin": 25, "unlock_energised": "false"},
        {"relay_pin": 33, "relay_active_high": 0},
        {"relay_pin": 32, "relay_active_high": False},
    ]))
    assert claimed == {32: 1}


def test_main_called_by_a_boards_main_py_locks_the_relays_first():
    # On an ESP32, main.py calls agent.main.main([...]): no `-m`, so the
    # module's first statements did not lock anything. main() does, before
    # it reads anything else (here the site file is missing: exit 2, yet
    # the relay was claimed at its locked level first).
    from agent import main
    folder = tmpdir()
    board = write_json(folder, "board.json", _board([{"relay_pin": 25, "relay_active_high": False}]))
    safe_boot.claimed.clear()
    safe_boot.done = False
    try:
        main.main(["--board", board, "--site", folder + "/missing.json"])
    except SystemExit as e:
        assert e.args[0] == 2   # MicroPython has no SystemExit.code
    assert safe_boot.claimed == {25: 1} and safe_boot.done
    safe_boot.claimed.clear()
