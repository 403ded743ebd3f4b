# What every uplink does the same way: journal what the Thing reports
# (through Delivery), and keep a link up: serve it, and when it fails, log
# why, back off with jitter, and start over. A protocol's uplink supplies
# _serve_once() (connect, register, run until the link fails) and, if it
# holds resources between links, _after_link().
import asyncio

from agent import log
from agent.backoff import Backoff
from agent.errors import LinkClosed
from agent.hal import format_exc
from agent.uplinks.delivery import Delivery, journal_kind

NAME = "uplink"


class Uplink:
    def __init__(self, site, thing, journal, carries):
        self.site = site
        self.thing = thing
        self.journal = journal
        self.delivery = Delivery(journal, carries)
        self.online = False
        self.backoff = Backoff(site["backoff_base_s"], site["backoff_cap_s"], site["backoff_reset_s"])
        thing.listen(self._on_thing)

    # Thing -> journal, durably, before anything is sent. Property changes
    # travel as the events the peripherals raise.
    def _on_thing(self, kind, name, value):
        jkind = journal_kind(kind, name)
        if jkind is not None:
            self.delivery.keep(jkind, name, value)

    def _up(self):
        """Registered: the link counts as up from now."""
        self.online = True
        self.thing.update("online", True)
        self.backoff.up()
        log.count("registrations")
        log.info(NAME, "registered as %s" % self.site["device_id"])

    async def run(self):
        """Serve the link, and start over with backoff whenever it fails
        (a supervised task)."""
        while True:
            try:
                await self._serve_once()
            except LinkClosed as e:
                log.warn(NAME, "link down: %s" % e)
            except Exception as e:  # noqa: BLE001 - any link failure means start over
                log.error(NAME, "link failed: %r\n%s" % (e, format_exc(e)))
            await self._after_link()
            self.backoff.down()
            if self.online:
                self.online = False
                self.thing.update("online", False)
            delay = self.backoff.next_delay()
            log.info(NAME, "reconnecting in %.1fs" % delay)
            await asyncio.sleep(delay)

    async def _after_link(self):
        pass

    async def _serve_once(self):
        raise NotImplementedError
