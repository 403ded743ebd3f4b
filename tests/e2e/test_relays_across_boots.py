# Safe at boot, end to end, with the relay pins watched from the first
# process's start: the agent goes through a boot, a reboot command, a crash
# (kill -9), a watchdog-style kill (SIGABRT, systemd's WatchdogSignal),
# repeated crashes into a safe-mode boot, and a reboot back out of it.
# Every time a relay shows its unlock level, a grant the test asked for
# caused it: a cloud unlock (sent before the relay moved, answered after)
# or an exit button pressed (before the relay moved, released after).
# Two boards: the emulated one on both runtimes (the emulator records what
# the agent drives), and the ESP32 one under MicroPython on the stand-in
# `machine` (tests/mp/stubs), which logs every pin write to a file.
import asyncio
import json
import signal
import time

from agent.config import load_board
from host_tools import mpy
from host_tools.emulator import BoardEmulator
from host_tools.paths import BOARDS, ROOT
from host_tools.runner import BoardSession, agent_command

from e2e_support import BOARD, SITE

STUBS = ROOT / "tests" / "mp" / "stubs"
HEALTH = {"safe_mode_after": 3, "stable_s": 600}


class Agent:
    """Agent processes, one after the other, on one board and one journal."""

    def __init__(self, argv, env, cwd):
        self.argv, self.env, self.cwd = argv, env, cwd
        self.lines = []
        self.session = None

    async def boot(self):
        """A new process (its session restarts it after a reboot command)."""
        self.session = await BoardSession(self.argv, self.env, self.cwd, self.lines.append, None, None).start()

    async def registered(self, after):
        """Until the agent has registered with the cloud after + 1 times."""
        for _ in range(600):
            if sum("registered as" in line for line in self.lines) > after:
                return
            assert not self.session.ended, "\n".join(self.lines[-40:])
            await asyncio.sleep(0.05)
        raise AssertionError("not registered:\n" + "\n".join(self.lines[-40:]))

    async def kill(self, sig):
        self.session.proc.send_signal(sig)
        await asyncio.wait_for(self.session.wait(), 10)
        await self.session.stop()


async def _lifecycle(agent, admin, mark, unlocked, rex=None):
    """The boots, the kills and the grants. mark(kind, door) notes a grant's
    start ("cause") and end ("done") in the watched record; unlocked(door)
    reads the lock from the pins; rex(door, pressed) presses an exit button."""
    ids = iter(range(1000))

    async def command(name, payload=None):
        return (await admin.command(name, payload, cmd_id="c%d" % next(ids)))["payload"]

    async def until(cond):
        for _ in range(200):
            if cond():
                return True
            await asyncio.sleep(0.02)
        return False

    async def unlock(door):
        mark("cause", door)
        answer = await command("unlock", {"door": door, "duration_ms": 1000})
        assert answer["ok"], answer
        # The grant ends once the door was seen open and then relocked: the
        # relay's writes reach the emulator on a socket of their own, so
        # under load the answer (through the bench) can come in before the
        # write it follows.
        assert await until(lambda: unlocked(door)), "%s never seen unlocked" % door
        assert await until(lambda: unlocked(door) is False), "%s never relocked" % door
        mark("done", door)

    await agent.boot()
    await agent.registered(0)
    await unlock("front")
    await unlock("gate")
    assert (await command("reboot"))["ok"]
    await agent.registered(1)                  # the session restarted it: exit 75
    await agent.kill(signal.SIGKILL)           # a crash
    await agent.boot()
    await agent.registered(2)
    await agent.kill(signal.SIGABRT)           # what systemd's watchdog sends
    await agent.boot()
    await agent.registered(3)
    await agent.kill(signal.SIGKILL)           # three unstable boots in a row
    await agent.boot()
    await agent.registered(4)
    status = (await command("status"))["result"]
    assert status["safe_mode"] is True and status["unstable_boots"] == 3, status
    refused = await command("unlock", {"door": "front"})
    assert not refused["ok"] and "unknown command" in refused["error"]
    if rex is not None:
        # Egress in safe mode: the exit button still opens the door.
        await asyncio.sleep(0.3)               # the button's idle level, through the debounce
        mark("cause", "front")
        rex("front", True)
        opened = await until(lambda: unlocked("front"))
        rex("front", False)
        mark("done", "front")
        assert opened
    assert (await command("reboot"))["ok"]     # leaves safe mode
    await agent.registered(5)
    status = (await command("status"))["result"]
    assert status["safe_mode"] is False and status["unstable_boots"] == 0, status
    await unlock("front")


def _check(record, pins, locked):
    """record: in order, ("write", pin, level) and (kind, door) marks. Each
    rise of a pin to its unlock level lies inside a grant for its door."""
    doors = {pin: door for door, pin in pins.items()}
    open_grants, last, rises = set(), {}, {door: 0 for door in pins}
    for entry in record:
        if entry[0] == "cause":
            open_grants.add(entry[1])
        elif entry[0] == "done":
            open_grants.discard(entry[1])
        elif entry[1] in doors:
            _, pin, level = entry
            door = doors[pin]
            if pin not in last:
                assert level == locked[door], ("first level", door, record)
            if level != locked[door] and last.get(pin) != level:
                assert door in open_grants, ("unlocked with no grant", door, record)
                rises[door] += 1
            last[pin] = level
    return rises


async def test_emulated_relays_show_their_unlock_level_only_for_grants(runtime, rig, bench, admin, tmp_path):
    spec = json.loads(BOARD.read_text())
    spec["health"] = HEALTH
    # The front door with an exit button (a strike, active high), and a door
    # wired the other way round: a maglock (energised while locked) on an
    # active-low relay board.
    spec["peripherals"] = [
        {"type": "door", "name": "front", "relay_pin": 26, "sensor_pin": 27, "rex_pin": 25},
        {"type": "door", "name": "gate", "relay_pin": 30, "relay_active_high": False, "unlock_energised": False,
         "sensor_pin": 31},
        {"type": "climate", "name": "lobby"}]
    board_path = tmp_path / "board.json"
    board_path.write_text(json.dumps(spec))
    board = load_board(str(board_path))
    emulator = await BoardEmulator(board).start()
    argv, env, cwd = agent_command(runtime, board_path, rig.write_site(**SITE), heap_kb=board["heap_kb"],
                                   emulator=(emulator.host, emulator.port), journal=tmp_path / "journal")
    agent = Agent(argv, env, cwd)
    marks = []
    try:
        await _lifecycle(agent, admin, lambda kind, door: marks.append((time.monotonic(), kind, door)),
                         emulator.unlocked, lambda door, pressed: emulator.set_rex(pressed, door))
    finally:
        if agent.session is not None:
            await agent.session.stop()
        await emulator.stop()
        print("\n".join(agent.lines[-60:]))
    assert emulator.connections == 6
    record = sorted([(t, "write", pin, level) for t, pin, level in emulator.writes] + marks)
    rises = _check([e[1:] for e in record], {"front": 26, "gate": 30}, {"front": 0, "gate": 0})
    assert rises == {"front": 3, "gate": 1}   # two cloud unlocks and the exit button; one cloud unlock


async def test_esp32_relays_show_their_unlock_level_only_for_grants(rig, bench, admin, tmp_path):
    spec = json.loads((BOARDS / "esp32-devkitc-door.json").read_text())
    spec["health"] = HEALTH
    # The door, and a maglock on an active-high relay (energised = 1 while
    # locked); no reader, no sensor (the stand-ins would need a hand on them).
    spec["peripherals"] = [{"type": "door", "name": "front", "relay_pin": 26, "sensor_pin": 27},
                           {"type": "door", "name": "gate", "relay_pin": 14, "unlock_energised": False,
                            "sensor": "none"}]
    board_path = tmp_path / "board.json"
    board_path.write_text(json.dumps(spec))
    # No heap cap: the stand-ins compile from source into the heap, where a
    # board's built-in `machine` costs nothing; the ESP32 agent's budget is
    # tests/e2e/test_esp32_agent.py's business, the relay's level is this one's.
    argv, _, cwd = agent_command("micropython", board_path, rig.write_site(**SITE), journal=tmp_path / "journal")
    pin_log = tmp_path / "pins.log"
    env = dict(mpy.micropython_env(STUBS, mpy.build_deploy()), MACHINE_PIN_LOG=str(pin_log))
    agent = Agent(argv, env, cwd)
    levels = {}

    def mark(kind, door):
        # Into the pin log itself: the order of its lines is the order of events.
        with open(pin_log, "a") as f:
            f.write("%s %s\n" % (kind, door))

    def unlocked(door):
        lines = pin_log.read_text().split("\n")
        pin = {"front": 26, "gate": 14}[door]
        for line in lines:
            parts = line.split()
            if len(parts) == 3 and parts[1] == str(pin):
                levels[door] = int(parts[2])
        return levels.get(door) == {"front": 1, "gate": 0}[door]

    try:
        await _lifecycle(agent, admin, mark, unlocked)
    finally:
        if agent.session is not None:
            await agent.session.stop()
        print("\n".join(agent.lines[-60:]))
    record = []
    for line in pin_log.read_text().split("\n"):
        parts = line.split()
        if len(parts) == 3:
            record.append(("write", int(parts[1]), int(parts[2])))
        elif len(parts) == 2 and parts[0] in ("cause", "done"):
            record.append((parts[0], parts[1]))
    rises = _check(record, {"front": 26, "gate": 14}, {"front": 0, "gate": 1})
    assert rises == {"front": 2, "gate": 1}
