# The board's "access" section on both runtimes: defaults a door board can
# run with, every bad value refused at start naming its field, the store's
# folder taken from the board file's own folder and made per device id.
from agent import config
from agent.access.controller import make
from agent.errors import ConfigError
from agent.thing import Thing

from support import raises, tmpdir, write_json

BOARD = {
    "name": "t", "chip": "host", "runtimes": ["micropython", "cpython"], "hal": "emulated",
    "heap_kb": 192, "emulator": {"host": "127.0.0.1", "port": 1},
    "peripherals": [{"type": "door", "relay_pin": 26, "sensor_pin": 27}],
}


def board(**access):
    b = dict(BOARD)
    if access:
        b["access"] = access
    return b


def test_the_defaults_are_those_of_a_door_board():
    got = config.load_board(write_json(tmpdir(), "b.json", board()))["access"]
    assert got["max_users"] == 10000 and got["pin_attempts"] == 3 and got["pin_lockout_s"] == 60
    assert got["cloud_decides_ms"] == 0 and got["path"] is None   # beside the journal: access.controller.make


def test_a_bad_value_is_refused_naming_its_field():
    for fields, name in (({"max_users": 0}, "access.max_users"), ({"max_users": 10 ** 6}, "access.max_users"),
                         ({"pin_attempts": True}, "access.pin_attempts"),
                         ({"pin_lockout_s": 1.5}, "access.pin_lockout_s"),
                         ({"cloud_decides_ms": 60000}, "access.cloud_decides_ms"), ({"path": ""}, "access.path"),
                         ({"pin": "1234"}, "access.pin")):
        e = raises(ConfigError, config.load_board, write_json(tmpdir(), "b.json", board(**fields)))
        assert e.field == name, (fields, e)


def test_the_store_lives_in_a_folder_per_device_beside_the_board_file():
    folder = tmpdir()
    b = config.load_board(write_json(folder, "b.json", board(path="flash/users", max_users=50)))
    a = make(Thing("d1"), b, {"device_id": "d1", "gmt": 1, "max_frame": 16384}, None)
    assert a.store.folder == folder + "/flash/users/d1" and a.store.max_users == 50
    a.store.put({"id": "u1"})
    assert make(Thing("d1"), b, {"device_id": "d1", "gmt": 1, "max_frame": 16384}, None).store.count() == 1
    assert make(Thing("d2"), b, {"device_id": "d2", "gmt": 1, "max_frame": 16384}, None).store.count() == 0


def test_a_users_doors_are_named_with_the_alphabet_a_board_names_doors_with():
    from agent.access.check import DOOR_CHARS
    assert DOOR_CHARS == config.NAME_CHARS



def test_the_store_lives_beside_the_journal_unless_the_board_says_where():
    # --journal moves the journal (main.py): the users must move with it,
    # or a second agent on the same board file would share a store.
    import os
    folder = tmpdir()
    b = config.load_board(write_json(folder, "b.json", board()))
    b["journal"]["path"] = folder + "/elsewhere"
    make(Thing("dev-1"), b, {"device_id": "dev-1", "gmt": 0, "max_frame": 16384}, None)
    assert os.stat(folder + "/elsewhere/.users/dev-1")
