# Assembles one device from its board and site files: the Thing, the
# peripherals the board declares, the uplink, and the supervisor that runs
# them. Also the device's own commands (status).
import asyncio

from agent import clock, hal, log
from agent.errors import CommandError
from agent.supervisor import Supervisor
from agent.thing import Thing

VERSION = "0.1.0"


def uplink_factory(kind):
    """The uplink for the site's protocol; imported only when used (RAM).
    Code is loaded before the journal is read: see Device.__init__.
    `net` is called only by WebSocket uplinks (it imports the WS library)."""
    if kind == "http":
        from agent.uplinks.http import HttpUplink
        return lambda site, thing, net, journal: HttpUplink(site, thing, journal)
    from agent.uplinks.ws import WsUplink
    if kind == "json_ws":
        from agent.codecs import json_ws as proto

        def make(site, thing, net, journal):
            session = proto.Session(site["device_id"], site["token"], site["max_frame"])
            return WsUplink(site, thing, net(), journal, session, proto.carries)
        return make
    if kind == "xml_ws":
        from agent.codecs import xml_bio as proto

        def make(site, thing, net, journal):
            session = proto.Session(site["device_id"], site["token"], site["max_frame"], site["gmt"])
            return WsUplink(site, thing, net(), journal, session, proto.carries)
        return make
    raise ValueError("uplink %r is not supported" % kind)


def journal_dir(board, site):
    # One journal per device identity: re-pointing a board at another
    # device id must not send the old device's records under the new name.
    return board["journal"]["path"].rstrip("/") + "/" + site["device_id"]


class Device:
    __slots__ = ("board", "site", "thing", "io", "uplink", "journal", "supervisor",
                 "heap_peak", "_started")

    def __init__(self, board, site, io, net):
        self.board = board
        self.site = site
        self.io = io
        self.thing = Thing(site["device_id"])
        self.supervisor = Supervisor()
        self.heap_peak = 0
        self._started = hal.ticks_ms()
        self.thing.prop("online", False)
        self.thing.command("status", self.status)
        self.thing.command("set", self.set_property)

        if hasattr(io, "run"):
            self.supervisor.add("io", io.run, base_s=0.2, cap_s=5)
        for cfg in board["peripherals"]:
            part = self._peripheral(cfg)
            self.supervisor.add(cfg["type"] + ":" + cfg["name"], part.run)

        # Code first, then data: importing a module needs contiguous heap,
        # which journal recovery (many small reads) leaves fragmented.
        from agent.journal import Journal
        make_uplink = uplink_factory(site["uplink"])
        jcfg = board["journal"]
        self.journal = Journal(journal_dir(board, site), jcfg["max_kb"] * 1024, jcfg["segment_bytes"],
                               clock=clock.now)
        hal.collect()
        if self.journal.pending():
            log.info("agent", "journal holds %d unsent records" % self.journal.pending())
        self.uplink = make_uplink(site, self.thing, net, self.journal)
        self.supervisor.add("uplink", self.uplink.run)
        if hal.MICROPYTHON:
            self.supervisor.add("heap", self._watch_heap)

    def _peripheral(self, cfg):
        kind = cfg["type"]
        if kind == "fingerprint":
            from agent.attendance import Attendance
            from agent.peripherals.fingerprint import FingerprintReader
            reader = FingerprintReader(self.thing, self.io, cfg)
            Attendance(self.thing, reader, self.site["gmt"], cfg["mode"])
            return reader
        if kind == "door":
            from agent.peripherals.door import Door
            return Door(self.thing, self.io, cfg)
        from agent.peripherals.climate import Climate
        return Climate(self.thing, self.io, cfg, self.site["telemetry_interval_s"])

    async def _watch_heap(self):
        # The GC heap has no high-water mark of its own, and between
        # collections it holds garbage too: sample the live size after a
        # collection. Once a second costs well under a millisecond here.
        while True:
            used = hal.heap_live()
            if used > self.heap_peak:
                self.heap_peak = used
            await asyncio.sleep(1)

    async def set_property(self, payload):
        """{"property": name, "value": v}: write a writable property."""
        name = payload.get("property")
        if not isinstance(name, str) or "value" not in payload:
            raise CommandError('set needs {"property": NAME, "value": VALUE}')
        await self.thing.write(name, payload["value"])
        return {"property": name, "value": self.thing.get(name)}

    async def status(self, payload):
        return {
            "version": VERSION,
            "runtime": hal.RUNTIME,
            "board": self.board["name"],
            "uptime_s": hal.ticks_diff(hal.ticks_ms(), self._started) // 1000,
            "properties": self.thing.snapshot(),
            "counters": dict(log.counters),
            "restarts": dict(self.supervisor.restarts),
            "journal": {"pending": self.journal.pending(), "next_id": self.journal.next_id,
                        "bytes": self.journal.size(), "stats": dict(self.journal.stats)},
            "heap_live": hal.heap_live(),
            "heap_peak": self.heap_peak or None,
            "heap_budget_kb": self.board["heap_kb"],
        }

    def close(self):
        self.journal.close()

    async def run(self):
        log.info("agent", "doorlink %s on %s, board %s, device %s"
                 % (VERSION, hal.RUNTIME, self.board["name"], self.site["device_id"]))
        await self.supervisor.run()
