# The management channel (cloud control, site `control`): a WebSocket
# client to the site's control server that answers its requests, one at a
# time in arrival order, beside whichever data uplink the site uses. It
# runs as a supervised task of its own: door decisions never wait for it.
#
# The server pings (WebSocket PING frames, answered by the transport);
# any frame resets a liveness timer, and control.liveness_s of silence
# drops the link, which is started again with the shared backoff.
import asyncio

from agent import clock, log, records
from agent.backoff import Backoff
from agent.codecs import control as codec
from agent.errors import CommandError, LinkClosed
from agent.hal import format_exc, ticks_diff, ticks_ms
from agent.tasks import first_done
from agent.uplinks.relink import keep_up

NAME = "control"
REQUEST_TIMEOUT_S = 20   # one request's handler; the reader waits for it
QUIET = ("app/state", "system/log/get")   # read-only and frequent: not logged
# Refusals are counted each, said at most this often: a flood of junk (from
# anyone on a ws:// path, key or no key) must not push what the door said
# out of the log kept on flash, nor cost a flash write every 2 s.
REFUSED_SAID_S = 10


class ControlChannel:
    def __init__(self, site, handlers, net):
        """`handlers`: request type -> async fn(body) -> reply body
        (agent/control/requests.py).
        `net`: connect(url, max_size, timeout, write_timeout, ca_file, headers,
        as_bytes)."""
        self.cfg = site["control"]
        self.site = site
        self.handlers = handlers
        self.net = net
        self.verifier = None
        if self.cfg["key"]:
            from agent.codecs.signing import Verifier
            self.verifier = Verifier(self.cfg["key"], site["device_id"])
            self._floor()
        else:
            # Allowed (the protocol document's own server does not sign),
            # but said at every start: it is an open door.
            url = self.cfg["url"]
            path = ", or sits on the network path to it," if url.startswith("ws:") else ""
            log.warn(NAME, "no control.key: requests are not signed, so whoever runs %s%s can reboot "
                     "this door and replace its files" % (url, path))
        self.backoff = Backoff(site["backoff_base_s"], site["backoff_cap_s"], site["backoff_reset_s"])
        self._busy = False
        self._refused = [None, 0]   # ticks_ms of the last refusal said, refusals not said since
        self._crashed = []   # request types whose handler crash was logged in full

    def _floor(self):
        # The clock when the agent started, or first became believable: a
        # request signed before it is a replay across a restart (the nonces
        # of the last run are gone with its RAM). The next whole second, as
        # ts has no finer grain: a reboot's own request, signed in the
        # second the agent started again in, must not pass.
        v = self.verifier
        if v is not None and v.floor is None:
            now = clock.now()
            if records.plausible_time(now):
                v.floor = now + 1

    async def _past_floor(self):
        # Nothing a server signs before the floor is taken: the first
        # connection waits for it (a second at most; a clock set back
        # meanwhile is not waited for).
        self._floor()
        v = self.verifier
        for _ in range(6):
            if v is None or v.floor is None or clock.now() >= v.floor:
                return
            await asyncio.sleep(0.25)

    def _headers(self):
        token = self.cfg["token"]
        if token is None:
            token = self.site["token"]
        headers = [("X-Device-Id", self.site["device_id"])]
        if token:
            headers.append(("Authorization", "Bearer " + token))
        return headers

    async def run(self):
        """Serve the link; when it fails, back off and start over."""
        await keep_up(NAME, self._serve_once, self.backoff)

    async def _serve_once(self):
        cfg, site = self.cfg, self.site
        await self._past_floor()
        log.info(NAME, "connecting to %s" % cfg["url"])
        # Requests come as UTF-8 bytes, parsed as they are: a 6 KB file/put
        # needs one block of its size free, not two (its text as well).
        conn = await self.net.connect(cfg["url"], cfg["max_message"], site["connect_timeout_s"],
                                      site["write_timeout_s"], site["ca_file"], self._headers(), True)
        try:
            self.backoff.up()
            log.count("control_connections")
            log.info(NAME, "connected")
            await first_done(self._reader(conn), self._liveness(conn))
        finally:
            await conn.close()

    async def _reader(self, conn):
        while True:
            ev = self._parse(await conn.recv())   # the request's text is not held while it is served
            self._busy = True
            try:
                out = await self._reply(ev)
                ev = None
                await conn.send(out)
            finally:
                self._busy = False
            # The reply's text is not held while the next request is awaited.
            out = None

    async def _liveness(self, conn):
        window = self.cfg["liveness_s"]
        step = min(1, window / 4)
        while True:
            await asyncio.sleep(step)
            self._floor()
            if self._busy:
                continue   # a request is being answered: its reader is not reading
            silent = ticks_diff(ticks_ms(), conn.rx_ms) / 1000
            if silent >= window:
                log.count("control_liveness_timeouts")
                raise LinkClosed("nothing from the control server for %.0fs (it pings every few seconds)"
                                 % silent)

    def _say_refused(self, error):
        said = self._refused
        if said[0] is not None and ticks_diff(ticks_ms(), said[0]) < REFUSED_SAID_S * 1000:
            said[1] += 1
            return
        more = " (and %d more refused, not said)" % said[1] if said[1] else ""
        log.warn(NAME, "request refused: %s%s" % (error, more))
        said[0], said[1] = ticks_ms(), 0

    async def answer(self, text):
        """A request's text (str, or its UTF-8 bytes) -> the reply's text,
        signed when the site has a key and the request was taken
        (agent/codecs/signing.py). Never raises for anything a server can
        send."""
        return await self._reply(self._parse(text))

    def _parse(self, text):
        now = clock.now()
        return codec.parse(text, self.cfg["max_message"], self.verifier, now, records.plausible_time(now))

    async def _reply(self, ev):
        out = await self._answer(ev)
        if self.verifier is None or type(ev) is codec.Refused:
            return out
        try:
            return self.verifier.seal(ev.nonce, out)
        except MemoryError:
            # The reply and its signed copy did not fit together: the request
            # was served, its answer cannot be vouched for (unsigned, the
            # bench shows it as unverified).
            log.count("out_of_memory")
            return codec.reply(ev.type, None, "out of memory on the device while signing the reply")

    async def _answer(self, ev):
        if type(ev) is codec.Refused:
            log.count(ev.counter)
            self._say_refused(ev.error)
            return codec.reply(ev.type, None, ev.error)
        t = ev.type
        if t not in self.handlers:
            log.count("control_unknown")
            return codec.reply(t, None, "unknown request type %s" % t)
        handler = self.handlers[t]
        if t not in QUIET:
            log.info(NAME, "request %s" % t)
        log.count("control_requests")
        try:
            body = await asyncio.wait_for(handler(ev.body), REQUEST_TIMEOUT_S)
            return codec.reply(t, body)
        except CommandError as e:
            error = str(e)
        except asyncio.TimeoutError:
            error = "timed out after %ds" % REQUEST_TIMEOUT_S
        except MemoryError:
            log.count("out_of_memory")
            error = "out of memory on the device"
        except Exception as e:  # noqa: BLE001 - a broken handler must not end the channel
            log.count("control_crashes")
            if t not in self._crashed:
                self._crashed.append(t)   # in full once; the counter says how often
                log.error(NAME, "request %s crashed: %r\n%s" % (t, e, format_exc(e)))
            error = "internal error: %r" % e
        log.count("control_failed")
        return codec.reply(t, None, error)
