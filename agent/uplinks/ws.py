# The WebSocket uplink, for every protocol spoken over a WebSocket (seed 001
# JSON, seed 001 XML): the I/O around a sans-IO session codec (see
# agent/codecs/session.py for the events it reports). One connection at a
# time; per connection three loops run until the first fails: reader
# (commands, pings, acks), sender (journal, through Delivery), heartbeat.
import asyncio

from agent import log
from agent.codecs import session as codec
from agent.errors import CommandError, LinkClosed
from agent.hal import ticks_ms, ticks_diff, format_exc
from agent.tasks import first_done
from agent.uplinks.base import NAME, Uplink

WINDOW = 16   # records sent but not yet acknowledged
BATCH = 8     # records read from flash at a time

class WsUplink(Uplink):
    def __init__(self, site, thing, net, journal, session, carries):
        Uplink.__init__(self, site, thing, journal, carries)
        self.net = net
        self.session = session
        self._conn = None
        self._last_rx = 0

    async def _serve_once(self):
        url = self.site["server"]
        timeout = self.site["connect_timeout_s"]
        log.info(NAME, "connecting to %s" % url)
        # The transport accepts a little more than the codec so that an
        # oversized message is reported by the codec without a reconnect;
        # anything far larger is refused by the transport (close 1009).
        conn = await self.net.connect(url, self.site["max_frame"] * 4, timeout,
                                      self.site["write_timeout_s"], self.site["ca_file"])
        self._conn = conn
        try:
            await conn.send(self.session.hello())
            await asyncio.wait_for(self._await_registered(conn), timeout)
            self._up()
            self._last_rx = ticks_ms()
            await first_done(self._reader(conn), self._sender(conn), self._heartbeat(conn))
        except asyncio.TimeoutError:
            raise LinkClosed("no 'registered' reply within %ss" % timeout)
        finally:
            self._conn = None
            await conn.close()

    async def _await_registered(self, conn):
        while True:
            ev = self.session.receive(await conn.recv())
            if ev[0] == codec.REGISTERED:
                self.delivery.restart(ev[1])
                return
            if ev[0] == codec.AUTH_FAILED:
                log.count("auth_failed")
                raise LinkClosed("registration refused: %s (check device_id and token in the site file)" % ev[1])
            await self._handle(conn, ev)

    async def _reader(self, conn):
        while True:
            text = await conn.recv()
            self._last_rx = ticks_ms()
            await self._handle(conn, self.session.receive(text))

    async def _handle(self, conn, ev):
        kind = ev[0]
        if kind == codec.SEND:
            await conn.send(ev[1])
        elif kind == codec.COMMAND:
            # Commands run as tasks: a slow one must not stall pings/commands.
            asyncio.create_task(self._run_command(conn, ev[1], ev[2], ev[3]))
        elif kind == codec.ACK:
            self.delivery.acked(ev[1])
        elif kind == codec.REREGISTER:
            log.count("reregistrations")
            raise LinkClosed("server forgot the session: %s; registering again" % ev[1])
        elif kind == codec.BAD_INPUT:
            log.count(ev[1])
            log.warn(NAME, ev[2])
        elif kind == codec.SERVER_ERROR:
            log.count("server_errors")
            log.warn(NAME, "server reports an error: %s" % ev[1])
            if self.delivery.acks and self.delivery.in_flight():
                # A record was refused: acks stop at it, so the window would
                # never reopen. Reconnect (with backoff); it is sent again.
                raise LinkClosed("server refused a record: %s" % ev[1])

    async def _run_command(self, conn, cmd_id, name, payload):
        log.info(NAME, "command %s %s" % (name, payload))
        log.count("commands")
        try:
            result = await self.thing.call(name, payload)
            reply = self.session.command_result(cmd_id, name, True, result)
        except CommandError as e:
            log.count("commands_failed")
            log.warn(NAME, "command %s refused: %s" % (name, e))
            reply = self.session.command_result(cmd_id, name, False, error=str(e))
        except Exception as e:  # noqa: BLE001 - a broken handler must not kill the link
            log.count("commands_failed")
            log.error(NAME, "command %s crashed: %r\n%s" % (name, e, format_exc(e)))
            reply = self.session.command_result(cmd_id, name, False, error="internal error: %r" % e)
        # The result travels on the link that is up now, or is lost with the
        # command's link: the cloud sees no result and can retry the command.
        target = self._conn or conn
        try:
            await target.send(reply)
        except LinkClosed as e:
            log.warn(NAME, "result of %s not delivered: %s" % (name, e))

    async def _sender(self, conn):
        delivery = self.delivery
        while True:
            for rec in await delivery.next_batch(WINDOW, BATCH):
                try:
                    text = self.session.record(rec)
                except ValueError as e:
                    text, why = None, str(e)
                else:
                    why = "not carried by this protocol"
                if text is None:
                    await delivery.skip(rec[0], why)
                    continue
                delivery.on_wire(rec[0])
                await conn.send(text)
                delivery.written(rec[0])
                log.count("sent_" + rec[2])
                # Between records: commands and acks get their turn even
                # while a long backlog replays.
                await asyncio.sleep(0)

    async def _heartbeat(self, conn):
        # Any message from the server proves the link; two silent intervals
        # (our ping unanswered twice) mean it is half-open: drop it.
        period = self.site["heartbeat_s"]
        while True:
            await asyncio.sleep(period)
            silent = ticks_diff(ticks_ms(), self._last_rx) / 1000
            if silent >= 2 * period:
                log.count("heartbeat_timeouts")
                raise LinkClosed("no reply from the server for %.0fs (half-open link)" % silent)
            if self.delivery.ack_overdue(2 * period):
                log.count("ack_timeouts")
                raise LinkClosed("no ack for record %d within %.0fs; sending it again"
                                 % (self.journal.acked + 1, 2 * period))
            await conn.send(self.session.ping())
