# The JSON WebSocket uplink's delivery logic against a scripted server, on
# both runtimes. The scripted link answers inside send(), before send()
# returns: the ordering a fast server on a fast link can produce.
import asyncio
import json

from agent import log
from agent.codecs import json_ws
from agent.journal import Journal
from agent.thing import Thing
from agent.uplinks.ws import WsUplink

from support import tmpdir

SITE = {"server": "ws://x/ws", "device_id": "d1", "token": "t", "max_frame": 16384,
        "connect_timeout_s": 2, "write_timeout_s": 2, "heartbeat_s": 30,
        "backoff_base_s": 0.01, "backoff_cap_s": 0.05, "backoff_reset_s": 1, "ca_file": None}


class ScriptedServer:
    def __init__(self, acks=True):
        self.acks = acks
        self.records = []
        self.inbox = []
        self.ready = asyncio.Event()
        self.as_bytes = False

    async def connect(self, url, max_size, timeout, write_timeout=10, ca_file=None, as_bytes=False):
        self.as_bytes = as_bytes   # as the real connection: messages as their UTF-8 bytes
        return self

    def _reply(self, obj):
        self.inbox.append(json.dumps(obj))
        self.ready.set()

    async def send(self, text):
        msg = json.loads(text)
        if msg["type"] == "register":
            self._reply({"type": "registered", "acks": self.acks})
        elif "id" in msg:
            self.records.append(msg["id"])
            if self.acks:
                self._reply({"type": "ack", "id": msg["id"]})
        await asyncio.sleep(0.002)  # the ack is read while we are still "sending"

    async def recv(self):
        while not self.inbox:
            self.ready.clear()
            await self.ready.wait()
        text = self.inbox.pop(0)
        return bytearray(text.encode()) if self.as_bytes else text

    async def close(self):
        pass


async def _run_until(uplink, done, seconds=5):
    """Run the uplink until done() holds (bounded in time), then stop it."""
    task = asyncio.create_task(uplink.run())
    try:
        for _ in range(int(seconds * 100)):
            if done():
                break
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
        await asyncio.sleep(0)


async def _drain(server, n=40):
    j = Journal(tmpdir() + "/j", clock=lambda: 1)
    for i in range(n):
        j.append("event", "punch", {"i": i})
    bad_before = log.counters.get("bad_ack", 0)
    session = json_ws.Session("d1", "t")
    up = WsUplink(SITE, Thing("d1"), server, j, session)
    await _run_until(up, lambda: j.pending() == 0 and len(server.records) >= n)
    return j, log.counters.get("bad_ack", 0) - bad_before


async def test_acks_that_arrive_during_send_are_not_lost():
    server = ScriptedServer(acks=True)
    j, bad = await _drain(server)
    assert bad == 0
    assert server.records == list(range(1, 41))  # oldest first, each once
    assert j.pending() == 0


async def test_server_without_acks_trims_on_completed_write():
    server = ScriptedServer(acks=False)
    j, bad = await _drain(server)
    assert server.records == list(range(1, 41))
    assert j.pending() == 0


class PickySession(json_ws.Session):
    """A protocol that cannot carry every record (XML has no telemetry):
    record() returns None for some and raises ValueError for others."""

    def __init__(self):
        json_ws.Session.__init__(self, "d1", "t")

    def record(self, rec):
        if rec[4]["i"] % 5 == 1:
            return None
        if rec[4]["i"] % 7 == 3:
            raise ValueError("punch without a user")
        return json_ws.Session.record(self, rec)


async def test_unsendable_records_are_skipped_not_wedged():
    server = ScriptedServer(acks=True)
    j = Journal(tmpdir() + "/j", clock=lambda: 1)
    for i in range(30):
        j.append("event", "punch", {"i": i})
    before = log.counters.get("records_unsendable", 0)
    quiet = log.counters.get("records_not_carried", 0)
    up = WsUplink(SITE, Thing("d1"), server, j, PickySession())
    await _run_until(up, lambda: j.pending() == 0)
    refused = [i for i in range(30) if i % 7 == 3 and i % 5 != 1]
    not_carried = [i for i in range(30) if i % 5 == 1]
    assert j.pending() == 0
    assert server.records == [i + 1 for i in range(30) if i not in refused and i not in not_carried]
    # A record the codec refused is an error; one the protocol has no form for is not.
    assert log.counters.get("records_unsendable", 0) - before == len(refused)
    assert log.counters.get("records_not_carried", 0) - quiet == len(not_carried)


class ForgetfulServer(ScriptedServer):
    """Answers pings but loses the first ack: the link looks healthy."""

    def __init__(self):
        super().__init__(acks=True)
        self.dropped = False

    async def send(self, text):
        msg = json.loads(text)
        if msg["type"] == "ping":
            self._reply({"type": "pong"})
        elif "id" in msg and not self.dropped:
            self.dropped = True
            self.records.append(msg["id"])
            return  # the ack never comes
        await ScriptedServer.send(self, text)


async def test_lost_ack_is_detected_and_the_record_resent():
    server = ForgetfulServer()
    j = Journal(tmpdir() + "/j", clock=lambda: 1)
    j.append("event", "punch", {"i": 0})
    site = dict(SITE, heartbeat_s=0.1)
    up = WsUplink(site, Thing("d1"), server, j, json_ws.Session("d1", "t"))
    await _run_until(up, lambda: j.pending() == 0, seconds=3)
    assert j.pending() == 0
    assert server.records == [1, 1]  # sent, ack lost, sent again


class CommandingServer(ScriptedServer):
    """Sends a burst of commands right after registration."""

    def __init__(self, n):
        super().__init__(acks=True)
        self.n = n
        self.results = []

    async def send(self, text):
        msg = json.loads(text)
        if msg["type"] == "register":
            self._reply({"type": "registered", "acks": True})
            for i in range(self.n):
                self._reply({"type": "command", "command": "wait", "id": i})
        elif msg.get("event_type") == "command_result":
            self.results.append(msg["payload"])
        await asyncio.sleep(0)


async def test_a_flood_of_commands_is_refused_with_a_result_not_run():
    # Each running command holds a task and its payload: a board's heap
    # must not be at the mercy of a cloud that floods them. Past the limit
    # no task is made: each command is refused with a result (sent before
    # the next message is read), counted, and logged once per burst.
    from agent.uplinks.base import MAX_COMMANDS
    server = CommandingServer(MAX_COMMANDS + 50)
    thing = Thing("d1")
    release = asyncio.Event()
    started = []

    async def wait(payload):
        started.append(1)
        await release.wait()
        return {}
    thing.command("wait", wait)
    refused = log.counters.get("commands_refused", 0)
    up = WsUplink(SITE, thing, server, Journal(tmpdir() + "/j", clock=lambda: 1), json_ws.Session("d1", "t"))
    task = asyncio.create_task(up.run())
    try:
        for _ in range(300):
            if len(server.results) >= 50:
                break
            await asyncio.sleep(0.01)
        assert len(started) == MAX_COMMANDS and up.running == MAX_COMMANDS
        assert log.counters.get("commands_refused", 0) - refused == 50
        assert [r["id"] for r in server.results] == list(range(MAX_COMMANDS, MAX_COMMANDS + 50))
        assert {r["ok"] for r in server.results} == {False} and "busy" in server.results[0]["error"]
        release.set()
        for _ in range(300):
            if len(server.results) >= MAX_COMMANDS + 50:
                break
            await asyncio.sleep(0.01)
        assert len([r for r in server.results if r["ok"]]) == MAX_COMMANDS
        assert up.running == 0
    finally:
        task.cancel()
        await asyncio.sleep(0)
