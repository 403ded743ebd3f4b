# Assembles one device from its board and site files: the Thing, the
# peripherals the board declares, the uplink, and the supervisor that runs
# them. Also the device's own commands: status, set, set_time, get_time,
# reboot.
import asyncio

from agent import __version__, clock, hal, log
from agent.errors import CommandError, ConfigError
from agent.supervisor import Supervisor
from agent.thing import ANY, INT, TEXT, Thing

REBOOT_DELAY_S = 1  # time for the reboot command's result to reach the cloud


def uplink_factory(kind):
    """The uplink for the site's protocol; imported only when used (RAM).
    Code is loaded before the journal is read: see Device.__init__."""
    if kind == "http":
        from agent.uplinks.http import HttpUplink
        return HttpUplink
    from agent.transports import websocket
    from agent.uplinks.ws import WsUplink
    if kind == "json_ws":
        from agent.codecs import json_ws

        def make(site, thing, journal):
            session = json_ws.Session(site["device_id"], site["token"], site["max_frame"])
            return WsUplink(site, thing, websocket, journal, session)
        return make
    if kind == "xml_ws":
        from agent.codecs import xml_bio

        def make(site, thing, journal):
            session = xml_bio.Session(site["device_id"], site["token"], site["max_frame"], site["gmt"])
            return WsUplink(site, thing, websocket, journal, session)
        return make
    raise ValueError("uplink %r is not supported" % kind)


class Device:
    __slots__ = ("board", "site", "thing", "io", "uplink", "journal", "supervisor",
                 "heap_peak", "restart", "_started")

    def __init__(self, board, site, io):
        self.board = board
        self.site = site
        self.io = io
        self.thing = Thing(site["device_id"])
        self.supervisor = Supervisor()
        self.heap_peak = 0
        self.restart = False   # a reboot was asked for: main() restarts once stopped
        self._started = hal.ticks_ms()
        thing = self.thing
        thing.prop("online", False)
        thing.command("status", self.status)
        thing.command("set", self.set_property, {"property": (TEXT, 32), "value": (ANY,)}, ("property", "value"))
        thing.command("set_time", self.set_time, {"time": (TEXT, 40), "epoch": (INT, 0, 1 << 40)})
        thing.command("get_time", self.get_time)
        thing.command("reboot", self.reboot)

        if hasattr(io, "run"):
            self.supervisor.add("io", io.run, base_s=0.2, cap_s=5)
        for i, cfg in enumerate(board["peripherals"]):
            try:
                part = self._peripheral(cfg)
            except MemoryError:
                raise
            except Exception as e:  # noqa: BLE001 - whatever the pin adapter raises, the board file is the cause
                raise ConfigError(None, "peripherals[%d]" % i, "(%s %r) cannot be set up by hal %r: %s"
                                  % (cfg["type"], cfg["name"], board["hal"], e))
            self.supervisor.add(cfg["type"] + ":" + cfg["name"], part.run)

        # Code first, then data: importing a module needs contiguous heap,
        # which journal recovery (many small reads) leaves fragmented.
        from agent.journal import Journal
        make_uplink = uplink_factory(site["uplink"])
        # The TLS context is data that lives as long as the process, and
        # needs a contiguous block (~3 KB on MicroPython): made before
        # the journal too.
        from agent.transports.streams import prepare_tls
        prepare_tls(site["server"], site["ca_file"])
        jcfg = board["journal"]
        self.journal = Journal(jcfg["folder"], jcfg["max_kb"] * 1024, jcfg["segment_bytes"], clock=clock.now)
        hal.collect()
        if self.journal.pending():
            log.info("agent", "journal holds %d unsent records" % self.journal.pending())
        self.uplink = make_uplink(site, thing, self.journal)
        self.supervisor.add("uplink", self.uplink.run)
        if hal.MICROPYTHON:
            self.supervisor.add("heap", self._watch_heap)

    def _peripheral(self, cfg):
        kind = cfg["type"]
        if kind == "fingerprint":
            from agent.attendance import Attendance
            from agent.peripherals.fingerprint import FingerprintReader
            reader = FingerprintReader(self.thing, cfg)
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
        name = payload["property"]
        await self.thing.write(name, payload["value"])
        return {"property": name, "value": self.thing.get(name)}

    # The time commands load the time-stamp code only when used (RAM: a door
    # agent on JSON WebSocket never needs it otherwise).
    async def set_time(self, payload):
        """{"time": "YYYY-MM-DDTHH:MM:SS"} on the site's wall clock (a Z or
        +hh:mm in it is honoured), or {"epoch": seconds}: the cloud's time."""
        from agent.codecs.values import is_int, wall_epoch
        epoch = payload.get("epoch")
        if epoch is None:
            epoch = wall_epoch(payload.get("time"), self.site["gmt"], trust_zone=True)
        if not is_int(epoch):
            raise CommandError('set_time needs {"time": "YYYY-MM-DDTHH:MM:SS"} or {"epoch": SECONDS}')
        try:
            drift = clock.set_from_cloud(epoch)
        except ValueError as e:
            raise CommandError(str(e))
        result = await self.get_time(payload)
        result["corrected_s"] = drift
        return result

    async def get_time(self, payload):
        from agent.codecs.values import epoch_wall
        return {"time": epoch_wall(clock.now(), self.site["gmt"]), "gmt": self.site["gmt"]}

    async def reboot(self, payload):
        """Stop every task, close the journal, and start again (a board
        resets; elsewhere the process ends with hal.RESTART_EXIT)."""
        log.warn("agent", "reboot requested by the cloud")
        self.restart = True
        asyncio.create_task(self._stop_soon())
        return {"rebooting_in_s": REBOOT_DELAY_S}

    async def _stop_soon(self):
        await asyncio.sleep(REBOOT_DELAY_S)
        self.supervisor.stop()

    async def status(self, payload):
        return {
            "version": __version__,
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
                 % (__version__, hal.RUNTIME, self.board["name"], self.site["device_id"]))
        await self.supervisor.run()
