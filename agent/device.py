# Assembles one device from its board and site files: the Thing, the
# peripherals the board declares, the uplink, and the supervisor that runs
# them. Also the device's own commands: status, set, set_time, get_time,
# reboot, log_tail, raw.
import asyncio

from agent import __version__, clock, hal, log, log_ring
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
                 "heap_peak", "restart", "_started", "boot", "safe", "doors", "access", "display", "readers",
                 "scripts")

    def __init__(self, board, site, io, boot=None):
        self.board = board
        self.boot = boot    # BootState (agent/boot_state.py), or None: no counter kept
        self.safe = boot is not None and boot.safe
        self.site = site
        self.io = io
        self.thing = Thing(site["device_id"])
        self.doors = None   # peripherals/doors.py Doors, with the board's first door
        self.access = None  # access/controller.py Access, on a board with doors
        self.display = None  # peripherals/display.py Display, on a board with one
        self.readers = []    # peripherals/reader.py Readers: the keypads (control key/*)
        self.scripts = None  # control/script_run.py Runner, where the site lets scripts run
        self.supervisor = Supervisor()
        self.heap_peak = 0
        self.restart = False   # a reboot (True) or respring ("soft") was asked for: main() restarts once stopped
        self._started = hal.ticks_ms()
        thing = self.thing
        thing.prop("online", False)
        thing.command("status", self.status)
        thing.command("set", self.set_property, {"property": (TEXT, 32), "value": (ANY,)}, ("property", "value"))
        thing.command("set_time", self.set_time, {"time": (TEXT, 40), "epoch": (INT, 0, 1 << 40)})
        thing.command("get_time", self.get_time)
        thing.command("reboot", self.reboot)
        log_ring.register(thing, log.ring)
        from agent.raw import Raw
        Raw(thing)   # the app APIs' raw passthrough: a loopback for now (agent/raw.py)

        if hasattr(io, "run"):
            self.supervisor.add("io", io.run, base_s=0.2, cap_s=5)
        if site["wifi"] is not None:
            self._add_wifi(board, site)
        from agent.health import CRITICAL, SAFE_MODE_CRITICAL, Health
        self.supervisor.add("health", Health(self.supervisor, boot, io, board["health"],
                                             SAFE_MODE_CRITICAL if self.safe else CRITICAL,
                                             self._leave_safe_mode if self.safe else None).run)
        # Doors first, then the access controller that decides for them,
        # then what presents credentials to it (Wiegand readers).
        held = []
        periph = [(i, cfg) for i, cfg in enumerate(board["peripherals"])
                  if not self.safe or cfg["type"] == "door"]
        for i, cfg in periph:
            if cfg["type"] != "wiegand":
                part = self._add(i, cfg)
                if part is not None and self.safe:
                    held.append(part)
        if self.doors is not None:
            # Offline decisions and the user commands (docs/door-controller.md, section 5).
            from agent.access.controller import make
            self.access = make(thing, board, site, self.doors)
        for i, cfg in periph:
            if cfg["type"] == "wiegand":
                self._add(i, cfg)

        # Code first, then data: importing a module needs contiguous heap,
        # which journal recovery (many small reads) leaves fragmented.
        from agent.journal import Journal
        if board["journal"]["backend"] == "raw":
            from agent.journal_raw import open_partition
        make_uplink = uplink_factory(site["uplink"])
        # The TLS context is data that lives as long as the process, and
        # needs a contiguous block (~3 KB on MicroPython): made before
        # the journal too.
        from agent.transports.streams import prepare_tls
        prepare_tls(site["server"], site["ca_file"])
        if site["control"] is not None:
            self._add_control(site)
        jcfg = board["journal"]
        if jcfg["backend"] == "raw":
            self.journal = open_partition(jcfg, clock.now)
        else:
            self.journal = Journal(jcfg["folder"], jcfg["max_kb"] * 1024, jcfg["segment_bytes"], clock=clock.now)
        hal.collect()
        if self.journal.pending():
            log.info("agent", "journal holds %d unsent records" % self.journal.pending())
        self.uplink = make_uplink(site, thing, self.journal)
        self.supervisor.add("uplink", self.uplink.run)
        if self.access is not None and hasattr(self.uplink, "ask_access"):
            # A cloud that decides (CloudSolution `access`), asked first when
            # the board's access.cloud_decides_ms says so.
            self.access.ask_cloud = self.uplink.ask_access
        for door in held:   # now that its events have a journal to go to
            door.hold_fail_state()
        if hal.MICROPYTHON:
            self.supervisor.add("heap", self._watch_heap)

    def _add_control(self, site):
        """The management channel (cloud control): a task of its own under
        the supervisor, so that no request ever delays a door decision."""
        from agent.control.requests import table
        from agent.log_flash import FlashLog
        from agent.transports import websocket
        from agent.transports.streams import prepare_tls
        from agent.uplinks.control import ControlChannel
        prepare_tls(site["control"]["url"], site["ca_file"])
        # What it reads of the log survives a reboot: the lines go to flash too.
        logs = FlashLog(self.board["journal"]["folder"] + "/log", log.ring)
        self.supervisor.add("log_flash", logs.run)
        self.supervisor.add("control", ControlChannel(site, table(self, logs), websocket).run)

    def _add(self, i, cfg):
        """Set up peripheral `i` of the board and supervise it -> the part,
        or None when safe mode went on without it."""
        try:
            part = self._peripheral(cfg)
        except MemoryError:
            raise
        except Exception as e:  # noqa: BLE001 - whatever the pin adapter raises, the board file is the cause
            problem = ConfigError(None, "peripherals[%d]" % i, "(%s %r) cannot be set up by hal %r: %s"
                                  % (cfg["type"], cfg["name"], self.board["hal"], e))
            if not self.safe:
                raise problem
            # Safe mode is there to reach the cloud: a door it cannot
            # set up stays as safe boot left it (locked), and says so.
            log.count("safe_mode_door_errors")
            log.error("agent", "safe mode: %s" % problem)
            return None
        if cfg["type"] == "door":
            # A door whose loop stopped watches no exit button and ends no
            # pulse: back within a second, not after a 30 s backoff.
            self.supervisor.add("door:" + cfg["name"], part.run, base_s=0.05, cap_s=1)
        else:
            self.supervisor.add(cfg["type"] + ":" + cfg["name"], part.run)
        return part

    def _leave_safe_mode(self):
        log.warn("agent", "safe mode ran stably: restarting normally")
        self.restart = True
        self.supervisor.stop()

    def _add_wifi(self, board, site):
        if board["hal"] != "esp32":
            log.warn("agent", "the site names a Wi-Fi network, which only an esp32 board joins: ignored")
            return
        from agent.hal.wifi import Wifi
        wifi = Wifi(site["wifi"], site["backoff_base_s"], site["backoff_cap_s"], site["backoff_reset_s"])
        self.supervisor.add("wifi", wifi.run)

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
            # Its mode, latched alarms and tuned settings are kept beside
            # the journal (peripherals/door_state.py), as the boot counter is.
            door = Door(self.thing, self.io, cfg, self.site["gmt"], self.board["journal"]["path"])
            if self.safe:
                # Safe mode (docs/door-controller.md, section 7): the door is
                # held in its fail state and its loop keeps the exit button
                # working, but no command reaches it.
                return door
            if self.doors is None:
                from agent.peripherals.doors import Doors
                self.doors = Doors(self.thing)
            self.doors.add(door)
            return door
        if kind == "wiegand":
            if self.access is None:
                raise ValueError("a reader needs a door on the board")
            from agent.peripherals.reader import Reader
            reader = Reader(self.access, self.io, cfg)
            self.readers.append(reader)
            return reader
        if kind == "display":
            from agent.peripherals.display import Display
            doors = [p["name"] for p in self.board["peripherals"] if p["type"] == "door"]
            door = cfg["door"] or (doors[0] if doors else None)
            if door is not None and door not in doors:
                raise ValueError("it shows door %r, which the board does not have" % door)
            self.display = Display(self.thing, cfg, door, self.readers, self.io)
            return self.display
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
        self.restart_soon()
        return {"rebooting_in_s": REBOOT_DELAY_S}

    def restart_soon(self, soft=False):
        """Stop in REBOOT_DELAY_S (time for a reply to go out), then restart:
        the board resets, or with `soft` only the interpreter restarts
        (main.py, hal.restart)."""
        self.restart = "soft" if soft else True
        asyncio.create_task(self._stop_soon())

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
            "safe_mode": self.safe,
            "unstable_boots": self.boot.count if self.boot is not None else None,
        }

    def close(self):
        self.journal.close()

    async def run(self):
        log.info("agent", "doorlink %s on %s, board %s, device %s"
                 % (__version__, hal.RUNTIME, self.board["name"], self.site["device_id"]))
        await self.supervisor.run()
