# Safe mode, on both runtimes: after repeated unstable boots the device
# comes up with its cloud link and its own commands only; each door is held
# in its fail state (fail-secure locked, fail-safe released), its exit
# button still opens it, and no command can unlock it.
import asyncio

from agent import config
from agent.boot_state import BootState
from agent.device import Device

from door_pins import REX, Pins
from support import tmpdir, write_json

STRIKE, MAGLOCK = 26, 25


class BoardPins(Pins):
    """The door pins, and the board's climate sensor: asked for or not."""

    def __init__(self):
        super().__init__()
        self.sensors = []

    def climate_sensor(self, cfg):
        self.sensors.append(cfg["name"])
        return self


def _device(unstable_boots):
    folder = tmpdir()
    board_path = write_json(folder, "board.json", {
        "name": "safe-test", "chip": "host", "runtimes": ["micropython", "cpython"], "hal": "emulated",
        "heap_kb": 192, "emulator": {"host": "127.0.0.1", "port": 1}, "journal": {"path": "journal"},
        "health": {"safe_mode_after": 3},
        "peripherals": [
            {"type": "door", "name": "front", "relay_pin": STRIKE, "sensor_pin": 27, "rex_pin": REX,
             "fail": "secure"},
            {"type": "door", "name": "gate", "relay_pin": MAGLOCK, "sensor_pin": 33, "unlock_energised": False,
             "fail": "safe"},
            {"type": "climate", "name": "lobby"},
        ]})
    # No cloud answers here: the uplink retries, as in an outage.
    site_path = write_json(folder, "site.json", {"server": "ws://127.0.0.1:1/ws", "device_id": "d1", "token": "t"})
    board = config.load_board(board_path)
    site = config.load_site(site_path)
    board["journal"]["folder"] = config.journal_folder(board, site, board_path, "journal.path")
    for _ in range(unstable_boots):
        BootState(board["journal"]["path"], 3).begin()
    boot = BootState(board["journal"]["path"], 3)
    boot.begin()
    pins = BoardPins()
    return Device(board, site, pins, boot), pins


async def _until(cond, limit=300):
    for _ in range(limit):
        if cond():
            return True
        await asyncio.sleep(0.01)
    return False


async def test_safe_mode_holds_each_door_in_its_fail_state_and_answers_only_management():
    device, pins = _device(3)
    try:
        assert device.safe
        # Claimed locked (safe boot's level), then each at its fail state.
        assert 1 not in pins.claimed[STRIKE].levels
        gate = pins.claimed[MAGLOCK].levels    # a maglock: energised locks it, released fails safe
        assert gate[0] == 1 and gate[-1] == 0 and 1 not in gate[gate.index(0):]
        commands = device.thing.commands()
        assert "status" in commands and "reboot" in commands
        for name in ("unlock", "lock", "door_mode", "lock_control"):
            assert name not in commands, name
        status = await device.status({})
        assert status["safe_mode"] is True and status["unstable_boots"] == 3
        assert status["properties"]["front.lock"] == "locked"
        assert status["properties"]["gate.lock"] == "unlocked"
        released = [r for r in device.journal.read() if r[3] == "unlocked"]
        assert [r[4]["door"] for r in released] == ["gate"]   # the release is on the record
        assert pins.sensors == []   # no other peripheral: the climate sensor is left alone
    finally:
        device.close()


async def test_the_exit_button_still_opens_a_door_held_locked_in_safe_mode():
    device, pins = _device(5)
    pins.set(27, 0)   # the door is closed (NC contact)
    task = asyncio.create_task(device.run())
    try:
        # The sensor's level through its debounce: the button's idle level, read
        # in the same polls, is known too.
        assert await _until(lambda: device.thing.get("front.door") == "closed")
        assert 1 not in pins.claimed[STRIKE].levels
        pins.set(REX, 0)                # pressed
        assert await _until(lambda: pins.claimed[STRIKE].energised is True)
    finally:
        device.supervisor.stop()
        await asyncio.wait_for(task, 5)
        device.close()


async def test_a_normal_boot_has_its_door_commands():
    device, pins = _device(2)
    try:
        assert not device.safe
        assert "unlock" in device.thing.commands()
        assert pins.claimed[MAGLOCK].levels == [1]      # locked, and nothing else
        assert (await device.status({}))["safe_mode"] is False
        assert pins.sensors == ["lobby"]
    finally:
        device.close()


async def test_a_stable_run_in_safe_mode_restarts_into_normal_mode():
    device, _ = _device(3)
    device.board["health"]["stable_s"] = 0.1   # below the board file's floor: a test's shortcut
    try:
        assert device.safe
        await asyncio.wait_for(device.run(), 10)   # ends by itself: a restart was asked for
        assert device.restart
        assert not BootState(device.board["journal"]["path"], 3).begin()   # the next boot is normal
    finally:
        device.close()
