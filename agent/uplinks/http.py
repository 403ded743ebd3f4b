# CloudSolution 3.0 over HTTP: the device asks, the server answers. `reg`
# once per link, `sendlog` batches from the journal (through the same
# Delivery as the WebSocket uplinks: a batch leaves the journal only as far
# as the reply's count acknowledges), `checklive` as the heartbeat. Every
# reply's `cloudtime` corrects the device clock; `access` 1 in a sendlog
# reply opens the door ("server mode") when the board has one; a server
# command riding on any reply (opendoor, setdevlock, the user words,
# settime, gettime, getnewlog, reboot: codecs.cs_commands) runs like a
# WebSocket command, and its answer is posted back. Where the cloud decides
# who enters (a board whose access section sets cloud_decides_ms),
# ask_access() is the access controller's ask_cloud: the card or finger
# goes as a punch of its own, and the reply's `access` is the verdict.
import asyncio

from agent import __version__, clock, log, records
from agent.codecs import cloudsolution as cs
from agent.codecs.session import REGISTERED, RemoteProtocolError
from agent.codecs.values import epoch_wall
from agent.errors import CommandError, LinkClosed
from agent.hal import ticks_diff, ticks_ms
from agent.tasks import first_done
from agent.transports.http import HttpClient
from agent.uplinks.base import NAME, Uplink

BATCH = 16   # records per sendlog
# `access: 1` opens the door for a punch made this recently: a backlog sent
# after an outage must not open it for people who left long ago. Judged on
# the monotonic clock: a reply's cloudtime may move the wall clock at any
# moment, and a reboot forgets every punch (none of them is fresh then).
ACCESS_WINDOW_S = 10
DEVINFO = {"modelname": "doorlink", "firmware": "doorlink-" + __version__, "usersize": 1000}


class HttpUplink(Uplink):
    def __init__(self, site, thing, journal, client=None):
        Uplink.__init__(self, site, thing, journal,
                        cs.Session(site["device_id"], site["gmt"], DEVINFO, site["token"]))
        self.client = client or HttpClient(site["server"], site["connect_timeout_s"], site["ca_file"])
        self._fresh = None   # (journal id, ticks) of the last punch journaled
        self._asked = None   # [journal id, Event, verdict] of the punch ask_access() waits on

    def _kept(self, kind):
        if kind == records.PUNCH:
            self._fresh = (self.journal.next_id - 1, ticks_ms())

    async def _after_link(self):
        await self.client.close()

    async def _call(self, request, cmd):
        status, body, raw = await self.client.post_json(cs.PATH, request)
        if body is None:
            raise LinkClosed("HTTP %d with an empty body to %s" % (status, cmd))
        try:
            reply = self.session.reply(cmd, body)
        except RemoteProtocolError as e:
            log.count("bad_replies")
            raise LinkClosed("unusable reply to %s: %s" % (cmd, e))
        if reply.cloudtime is not None:
            try:
                drift = clock.set_from_cloud(reply.cloudtime)
            except ValueError as e:
                log.warn(NAME, str(e))
            else:
                if abs(drift) >= clock.DRIFT_REPORT_S:
                    self.thing.emit("clock_drift", {"drift_s": drift})
        if reply.command is not None:
            if self.session.state == REGISTERED:
                await self.command(reply.command)
            else:  # a refused registration carries no orders
                log.count("unexpected_message")
                log.warn(NAME, "server command %s before registration ignored" % reply.command.id)
        return reply

    async def _send_result(self, message):
        if not self.online:
            raise LinkClosed("no link")
        await self._call(message, message["ret"])

    async def _serve_once(self):
        log.info(NAME, "registering with %s" % self.site["server"])
        reply = await self._call(self.session.hello(), "reg")
        if not reply.ok:
            log.count("auth_failed")
            raise LinkClosed("registration refused: %s (check device_id and token in the site file)"
                             % (reply.reason or "no reason given"))
        self.delivery.restart(True)  # sendlog replies acknowledge by count
        self._up()
        await first_done(self._sender(), self._heartbeat())

    async def _sender(self):
        delivery = self.delivery
        while True:
            recs = await delivery.next_batch(BATCH, BATCH)
            if cs.record(recs[0]) is None:
                # Journaled for another protocol (the site's uplink changed):
                # it can never go out here, and must not wedge the rest.
                await delivery.skip(recs[0][records.ID], "not carried by CloudSolution")
                continue
            # sendlog carries a run of consecutive journal ids (the server
            # dedupes on logindex+i); cut the batch where that breaks.
            run = [recs[0]]
            for rec in recs[1:]:
                if rec[records.ID] != run[-1][records.ID] + 1 or cs.record(rec) is None:
                    break
                run.append(rec)
            # The person at the door now travels alone: `access` answers a
            # batch, and must not be read as a grant for an older punch.
            fresh = self._fresh[0] if self._fresh else None
            ids = [r[records.ID] for r in run]
            if fresh in ids and len(run) > 1:
                at = ids.index(fresh)
                run = run[:at] if at else run[:1]
            first, last = run[0][records.ID], run[-1][records.ID]
            delivery.on_wire(last)
            reply = await self._call(self.session.sendlog(run), "sendlog")
            upto = cs.acked_upto(reply, first, len(run))
            if upto is None:
                log.count("sendlog_refused")
                raise LinkClosed("server did not take records %d..%d: %s"
                                 % (first, last, reply.reason or "no reason given"))
            delivery.acked(upto)
            if upto < last:
                delivery.restart(True)  # the server took part of the batch: the rest goes again
            punches = [r for r in run[:upto - first + 1] if records.kind(r) == records.PUNCH]
            log.count("sent_punch", len(punches))
            asked = self._asked
            if asked is not None and first <= asked[0] <= upto:
                # The access controller asked: the verdict is its to act on.
                asked[2] = reply.access == 1 if reply.access in (0, 1) else None
                asked[1].set()
            elif reply.access == 1 and self._fresh_among(punches):
                await self._grant_access()

    def _fresh_among(self, punches):
        fresh = self._fresh
        if fresh is None or ticks_diff(ticks_ms(), fresh[1]) > ACCESS_WINDOW_S * 1000:
            return False
        return [r for r in punches if r[records.ID] == fresh[0]] != []

    async def ask_access(self, door, source, credential, user):
        """The cloud's verdict on a credential at a door (Access.ask_cloud):
        True, False, or None when there is none to be had (no link, the
        punch not journaled). The controller bounds the wait; the punch
        stays journaled and is delivered whatever the outcome. A user the
        board does not know goes as `card:N` / `finger:N`: an enrollid of
        its own would name another user."""
        if not self.online or credential is None:
            return None
        who = user if user is not None else ("finger:" if source == "fingerprint" else "card:") + credential
        value = {records.USER: who, records.WHEN: epoch_wall(clock.now(), self.site["gmt"]),
                 records.GMT: self.site["gmt"], records.ACTION: "FP" if source == "fingerprint" else source,
                 records.DOOR: door}
        if not self.thing.emit(records.PUNCH, value):
            return None
        asked = self._asked = [self.journal.next_id - 1, asyncio.Event(), None]
        try:
            await asked[1].wait()
            return asked[2]
        finally:
            if self._asked is asked:
                self._asked = None

    async def _grant_access(self):
        if "unlock" not in self.thing.commands():
            return
        try:
            await self.thing.call("unlock", {records.SOURCE: "cloud_access"})
        except CommandError as e:
            log.warn(NAME, "access granted by the cloud, but the door did not open: %s" % e)

    async def _heartbeat(self):
        while True:
            await asyncio.sleep(self.site["heartbeat_s"])
            reply = await self._call(self.session.ping(clock.now()), "checklive")
            if not reply.ok:
                raise LinkClosed("checklive refused: %s" % (reply.reason or "no reason given"))
