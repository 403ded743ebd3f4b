# The door scenarios of tests/door_scenarios.py on the virtual board end to
# end, per runtime: the real agent (under the board's heap budget on
# MicroPython), the emulator's pins over loopback, the bench as the cloud
# and an admin's commands through it. One agent run for the whole table
# (an agent start costs seconds); the events are what the bench stored.
# Safe mode is not in it: a safe-mode boot is tests/e2e/test_relays_across_boots.py's.
import itertools
import json

import door_scenarios as ds
import pytest

from agent.records import DOOR_EVENTS
from host_tools.emulator import wiegand_card, wiegand_key

from e2e_support import DEVICE, SITE, TOKEN, admin_of

IN_PROCESS_ONLY = ("safe_mode_fail_states",)


@pytest.fixture
def rig_options(tmp_path):
    path = tmp_path / "door-scenarios.json"
    spec = ds.board_spec("emulated", "host", ["micropython", "cpython"])
    spec["emulator"] = {"host": "127.0.0.1", "port": 8781}   # the rig starts its emulator on a free port
    path.write_text(json.dumps(spec))
    # A quick reconnect once the cloud is back.
    site = dict(SITE, backoff_base_s=0.1, backoff_cap_s=0.5)
    return {"device_id": DEVICE, "token": TOKEN, "site": site, "board": path}


class VirtualWorld:
    """The scenarios' world (tests/door_scenarios.py) on the rig's agent."""

    def __init__(self, rig, admin):
        self.rig, self.admin = rig, admin
        self.emu = rig.session.emulator
        self.relays = {p["name"]: p["relay_pin"] for p in self.emu.board["peripherals"] if p["type"] == "door"}
        self.ids = itertools.count()
        self._cm = None      # the admin this world opened after a cloud outage
        self._boots = 0

    def door_open(self, is_open, door):
        self.emu.set_door_open(is_open, door)

    def rex(self, pressed, door):
        self.emu.set_rex(pressed, door)

    def wire_card(self, number, nbits):
        return wiegand_card(number, nbits)

    def wire_key(self, key):
        return wiegand_key(key)

    async def wiegand(self, reader, bits):
        await self.emu.send_wiegand_bits(reader, bits)

    def unlocked(self, door):
        return self.emu.unlocked(door)

    def levels(self, door):
        return [level for _, pin, level in self.emu.writes if pin == self.relays[door]]

    async def call(self, command, payload):
        got = (await self.admin.command(command, payload, cmd_id="c%d" % next(self.ids)))["payload"]
        return (True, got.get("result")) if got["ok"] else (False, got.get("error"))

    async def _status(self):
        good, status = await self.call("status", {})
        assert good, status
        return status

    async def events(self):
        rows = self.rig.bench.store.event_rows(DEVICE)   # as they arrived: one link, in journal order
        return [(r["event_type"], r["payload"]) for r in rows if r["event_type"] in DOOR_EVENTS]

    async def prop(self, name):
        return (await self._status())["properties"].get(name)

    async def counter(self, name):
        return (await self._status())["counters"].get(name, 0)

    async def quiet(self):
        async def sent():
            return (await self._status())["journal"]["pending"] == 0
        await ds.until(sent, "every record journaled so far delivered", 15000)

    async def cloud(self, up):
        if not up:
            self._boots = self.rig.output(None).count("registered as")
            await self.admin.ws.close()
            await self.rig.stop_bench()
            return
        self._cm = admin_of(await self.rig.restart_bench())
        self.admin = await self._cm.__aenter__()
        await ds.until(lambda: self.rig.output(None).count("registered as") > self._boots,
                       "the agent back with its cloud", 20000)

    async def close(self):
        if self._cm is not None:
            await self._cm.__aexit__(None, None, None)


async def test_every_door_scenario_on_the_virtual_board(runtime, rig, bench, admin, figure):
    await rig.start_agent(runtime=runtime)
    await rig.wait_registered(timeout=20)
    w = VirtualWorld(rig, admin)
    try:
        await ds.run(w, [n for n in ds.NAMES if n not in IN_PROCESS_ONLY])
        status = await w._status()
    finally:
        await w.close()
    if runtime == "micropython":
        figure("MicroPython agent after the door scenarios on the virtual board (3 doors, 2 readers): "
               "peak live heap %d bytes of %d KB" % (status["heap_peak"], status["heap_budget_kb"]))
        assert 0 < status["heap_peak"] < status["heap_budget_kb"] * 1024
