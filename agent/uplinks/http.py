# CloudSolution 3.0 over HTTP: the device asks, the server answers. `reg`
# once per link, `sendlog` batches from the journal (through the same
# Delivery as the WebSocket uplinks: a batch leaves the journal only as far
# as the reply's count acknowledges), `checklive` as the heartbeat. Every
# reply's `cloudtime` corrects the device clock; `access` 1 in a sendlog
# reply opens the door ("server mode") when the board has one.
import asyncio

from agent import clock, log
from agent.codecs import cloudsolution as cs
from agent.errors import CommandError, LinkClosed
from agent.tasks import first_done
from agent.uplinks.base import NAME, Uplink
from agent.uplinks.http_transport import HttpClient

PATH = "/api/device-http"
BATCH = 16   # records per sendlog


class HttpUplink(Uplink):
    def __init__(self, site, thing, journal, client=None):
        Uplink.__init__(self, site, thing, journal, cs.carries)
        self.gmt = site["gmt"]
        self.client = client or HttpClient(site["server"], site["connect_timeout_s"], site["ca_file"])

    async def _after_link(self):
        await self.client.close()

    async def _call(self, request):
        status, body, raw = await self.client.post_json(PATH, request)
        if body is None:
            raise LinkClosed("HTTP %d with an empty body to %s" % (status, request["cmd"]))
        try:
            reply = cs.parse_reply(body, request["cmd"], self.gmt)
        except cs.ProtocolError as e:
            log.count("bad_replies")
            raise LinkClosed("unusable reply to %s: %s" % (request["cmd"], e))
        if reply["cloudtime"] is not None:
            drift = clock.set_from_cloud(reply["cloudtime"])
            if abs(drift) >= clock.DRIFT_REPORT_S:
                self.thing.emit("clock_drift", {"drift_s": drift})
        if reply["pending_cmd"] is not None:
            log.count("server_commands_ignored")
            log.warn(NAME, "server command not supported yet, ignored: %r" % (reply["pending_cmd"],))
        return reply

    async def _serve_once(self):
        sn = self.site["device_id"]
        log.info(NAME, "registering with %s" % self.site["server"])
        reply = await self._call(cs.reg(sn, sn, {"modelname": "doorlink", "firmware": "doorlink",
                                                 "usersize": 1000}))
        if not reply["ok"]:
            log.count("auth_failed")
            raise LinkClosed("registration refused: %s (check device_id in the site file)"
                             % (reply["reason"] or "no reason given"))
        self.delivery.restart(True)  # sendlog replies acknowledge by count
        self._up()
        await first_done(self._sender(), self._heartbeat())

    async def _sender(self):
        delivery = self.delivery
        sn = self.site["device_id"]
        while True:
            recs = await delivery.next_batch(BATCH, BATCH)
            # sendlog carries a run of consecutive journal ids (the server
            # dedupes on logindex+i); cut the batch where that breaks.
            run = [recs[0]]
            for rec in recs[1:]:
                if rec[0] != run[-1][0] + 1:
                    break
                run.append(rec)
            delivery.on_wire(run[-1][0])
            reply = await self._call(cs.sendlog(sn, run, self.gmt))
            upto = cs.acked_upto(reply, run[0][0], len(run))
            if upto is None:
                log.count("sendlog_refused")
                raise LinkClosed("server did not take records %d..%d: %s"
                                 % (run[0][0], run[-1][0], reply["reason"] or "no reason given"))
            delivery.acked(upto)
            log.count("sent_punch", sum(1 for r in run[:upto - run[0][0] + 1] if r[2] == "punch"))
            if reply["access"] == 1 and any(r[2] == "punch" for r in run):
                await self._grant_access()

    async def _grant_access(self):
        if "unlock" not in self.thing.commands():
            return
        try:
            await self.thing.call("unlock", {"source": "cloud_access"})
        except CommandError as e:
            log.warn(NAME, "access granted by the cloud, but the door did not open: %s" % e)

    async def _heartbeat(self):
        sn = self.site["device_id"]
        while True:
            await asyncio.sleep(self.site["heartbeat_s"])
            reply = await self._call(cs.checklive(sn, clock.local_iso(clock.now(), self.gmt)))
            if not reply["ok"]:
                raise LinkClosed("checklive refused: %s" % (reply["reason"] or "no reason given"))
