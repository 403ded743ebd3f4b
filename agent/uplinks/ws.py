# The WebSocket uplink, for every protocol spoken over a WebSocket (JSON
# WebSocket, XML biometric): the I/O around a sans-IO session codec (see
# agent/codecs/session.py for the events it reports). One connection at a
# time; per connection three loops run until the first fails: reader
# (commands, pings, acks), sender (journal, through Delivery), heartbeat.
import asyncio

from agent import log, records
from agent.codecs.session import Ack, AuthFailed, BadInput, Command, Registered, Reregister, Send, ServerError
from agent.errors import LinkClosed
from agent.hal import ticks_diff, ticks_ms
from agent.tasks import first_done
from agent.uplinks.base import NAME, Uplink

WINDOW = 16   # records sent but not yet acknowledged
BATCH = 8     # records read from flash at a time


class WsUplink(Uplink):
    def __init__(self, site, thing, net, journal, session):
        Uplink.__init__(self, site, thing, journal, session)
        self.net = net          # connect(url, max_size, timeout, write_timeout, ca_file) -> connection
        self._conn = None
        self._last_rx = 0

    async def _serve_once(self):
        url = self.site["server"]
        timeout = self.site["connect_timeout_s"]
        log.info(NAME, "connecting to %s" % url)
        # A message over max_frame is refused at its frame header, before
        # any of it is kept (close 1009, then a fresh connection).
        conn = await self.net.connect(url, self.site["max_frame"], timeout, self.site["write_timeout_s"],
                                      self.site["ca_file"], as_bytes=self.session.AS_BYTES)
        try:
            await conn.send(self.session.hello())
            await asyncio.wait_for(self._await_registered(conn), timeout)
            self._conn = conn
            self._up()
            self._last_rx = ticks_ms()
            await first_done(self._reader(conn), self._sender(conn), self._heartbeat(conn))
        except asyncio.TimeoutError:
            raise LinkClosed("no 'registered' reply within %ss" % timeout)
        finally:
            self._conn = None
            self.session.close()
            await conn.close()

    async def _await_registered(self, conn):
        while True:
            ev = self.session.receive(await conn.recv())
            if type(ev) is Registered:
                self.delivery.restart(ev.acks)
                return
            if type(ev) is AuthFailed:
                log.count("auth_failed")
                raise LinkClosed("registration refused: %s (check device_id and token in the site file)"
                                 % ev.reason)
            await self._handle(conn, ev)

    async def _reader(self, conn):
        while True:
            msg = await conn.recv()
            self._last_rx = ticks_ms()
            await self._handle(conn, self.session.receive(msg))
            # Not held while the next message is awaited: a page of users is
            # kilobytes of heap, and its command (a task) has what it needs.
            msg = None

    async def _handle(self, conn, ev):
        t = type(ev)
        if t is Send:
            await conn.send(ev.text)
        elif t is Command:
            await self.command(ev)
        elif t is Ack:
            self.delivery.acked(ev.record_id)
        elif t is Reregister:
            log.count("reregistrations")
            raise LinkClosed("server forgot the session: %s; registering again" % ev.reason)
        elif t is BadInput:
            log.count(ev.counter)
            log.warn(NAME, ev.message)
        elif t is ServerError:
            log.count("server_errors")
            log.warn(NAME, "server reports an error: %s" % ev.reason)
            if ev.records and self.delivery.acks and self.delivery.in_flight():
                # A record was refused: acks stop at it, so the window would
                # never reopen. Reconnect (with backoff); it is sent again.
                raise LinkClosed("server refused a record: %s" % ev.reason)

    async def _send_result(self, message):
        conn = self._conn
        if conn is None:
            raise LinkClosed("no link")
        await conn.send(message)

    async def _sender(self, conn):
        delivery = self.delivery
        while True:
            for rec in await delivery.next_batch(WINDOW, BATCH):
                rid = rec[records.ID]
                try:
                    text = self.session.record(rec)
                except ValueError as e:
                    await delivery.skip(rid, str(e))
                    continue
                if text is None:
                    # The protocol has no form for this one (an unlock by
                    # the exit button over XML): not an error.
                    await delivery.skip(rid, None)
                    continue
                delivery.on_wire(rid)
                await conn.send(text)
                delivery.written(rid)
                log.count("sent_" + records.kind(rec))
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
