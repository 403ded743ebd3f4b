# The door's commands on both runtimes: what the cloud may ask is checked
# before the relay moves, and an unlock that cannot be journaled is not
# performed: the audit trail never misses a door opening.
from agent import config, log
from agent.codecs import json_ws
from agent.errors import CommandError
from agent.journal import Journal
from agent.peripherals.door import Door
from agent.thing import Thing
from agent.uplinks.ws import WsUplink

from support import araises, tmpdir

SITE = {"server": "ws://x/ws", "device_id": "d1", "token": "t", "max_frame": 16384,
        "connect_timeout_s": 2, "write_timeout_s": 2, "heartbeat_s": 30,
        "backoff_base_s": 0.01, "backoff_cap_s": 0.05, "backoff_reset_s": 1, "ca_file": None}


class Relay:
    def __init__(self):
        self.levels = []

    def on(self):
        self.levels.append(1)

    def off(self):
        self.levels.append(0)


class Closed:
    def value(self):
        return 0


class Pins:
    def __init__(self):
        self.relay = Relay()

    def output(self, pin, active_high=True):
        return self.relay

    def input(self, pin):
        return Closed()


class FullJournal(Journal):
    def append(self, kind, name, value, t=None):
        raise OSError(28, "no space left on the flash")


def _door(journal):
    thing = Thing("d1")
    WsUplink(SITE, thing, None, journal, json_ws.Session("d1", "t"))  # journals what the Thing reports
    pins = Pins()
    Door(thing, pins, config.peripheral("door", {"relay_pin": 26, "sensor_pin": 27, "name": "front"}))
    return thing, pins.relay


async def test_an_unlock_that_cannot_be_journaled_is_not_performed():
    thing, relay = _door(FullJournal(tmpdir() + "/j"))
    before = log.counters.get("unlocks_not_journaled", 0)
    e = await araises(CommandError, thing.call("unlock", {}))
    assert "could not be journaled" in str(e)
    assert relay.levels == [0]  # locked at start, never energised
    assert thing.get("lock") == "locked"
    assert log.counters.get("unlocks_not_journaled", 0) == before + 1


async def test_an_unlock_is_journaled_then_performed():
    journal = Journal(tmpdir() + "/j")
    thing, relay = _door(journal)
    assert await thing.call("unlock", {"duration_ms": 500}) == {"lock": "unlocked", "duration_ms": 500}
    assert relay.levels == [0, 1]
    rec = journal.read()[0]
    assert rec[2:4] == ["event", "door_unlocked"] and rec[4] == {"door": "front", "source": "cloud",
                                                                  "duration_ms": 500}
    await thing.call("lock", {})


async def test_what_the_cloud_asks_is_checked_before_the_relay_moves():
    thing, relay = _door(Journal(tmpdir() + "/j"))
    for payload in ({"source": "fingerprint"}, {"source": "x" * 5000}, {"duration_ms": 10 ** 9},
                    {"duration_ms": "3000"}, {"open_forever": True}):
        await araises(CommandError, thing.call("unlock", payload))
    assert relay.levels == [0]
