# Which journal records are on the wire and which the cloud has: the part
# of delivery every uplink shares (WebSocket JSON and XML, HTTP). The uplink
# only says what it sent and what the cloud acknowledged.
#
# With acknowledgements, a record leaves the journal when the cloud acked
# it, and at most `window` records are in flight; after a reconnect all
# unacknowledged records go again (the cloud drops duplicates by id).
# Without (a server that knows only the protocol), a record leaves once its
# write completed.
import asyncio

from agent import log
from agent.hal import ticks_diff, ticks_ms

CURSOR_IDLE_S = 2  # quiet time after which acknowledged progress goes to flash


class Delivery:
    __slots__ = ("journal", "carries", "acks", "sent", "moved", "_waiting_since")

    def __init__(self, journal, carries):
        self.journal = journal
        self.carries = carries        # carries(kind, name): can the protocol carry it?
        self.acks = False
        self.sent = journal.acked     # highest record id handed to the link
        self.moved = asyncio.Event()  # a record was journaled or acknowledged
        self._waiting_since = None    # ticks when the oldest unacked record was sent

    def keep(self, kind, name, value):
        """Journal a record, durably, before anything is sent. True once it
        is; None when this protocol does not carry it (nothing to keep);
        False (counted, logged) when it could not be kept."""
        if not self.carries(kind, name):
            return None
        try:
            self.journal.append(kind, name, value)
        except (OSError, ValueError) as e:
            log.count("journal_write_failed")
            log.error("delivery", "%s %s not journaled: %r" % (kind, name or "", e))
            return False
        self.moved.set()
        return True

    def restart(self, acks):
        """A new link, or the cloud asked for its backlog again: resend
        everything it has not acknowledged, oldest first."""
        self.acks = acks
        self.sent = self.journal.acked
        self._waiting_since = None
        self.moved.set()

    async def next_batch(self, window, batch):
        """The next records to send (oldest first), waiting while there are
        none or while `window` records await their acks."""
        journal = self.journal
        while True:
            self.moved.clear()
            self.sent = max(self.sent, journal.acked)  # eviction may move the cursor
            room = window - (self.sent - journal.acked) if self.acks else window
            if room > 0:
                recs = journal.read(self.sent, min(batch, room))
                if recs:
                    return recs
            # Caught up (or the window is full): wait for news; once things
            # are quiet, put the cursor on flash so a reboot resends nothing.
            try:
                await asyncio.wait_for(self.moved.wait(), CURSOR_IDLE_S)
            except asyncio.TimeoutError:
                journal.flush_cursor()

    def on_wire(self, rid):
        # Before the write, not after: the cloud's ack can arrive while the
        # sender still waits in send(). If the write fails the link is gone
        # and restart() sends everything unacknowledged again.
        if self._waiting_since is None:
            self._waiting_since = ticks_ms()
        self.sent = rid

    def ack_overdue(self, timeout_s):
        """Records are in flight and no ack came for `timeout_s`: the ack was
        lost or garbled (the link itself may look fine). The caller drops
        the link so that restart() sends them again."""
        if not self.acks or self._waiting_since is None or self.in_flight() <= 0:
            return False
        return ticks_diff(ticks_ms(), self._waiting_since) >= timeout_s * 1000

    def in_flight(self):
        return self.sent - self.journal.acked

    async def skip(self, rid, why):
        """Record `rid` cannot be put on the wire: the codec refused it
        (`why`), or the protocol has no form for it (`why` None). It leaves
        the journal, counted (and logged when refused), once everything
        before it is acknowledged (acks are cumulative, so not before)."""
        if why is None:
            log.count("records_not_carried")
        else:
            log.count("records_unsendable")
            log.error("delivery", "record %d cannot be sent (%s); dropped" % (rid, why))
        while self.acks and self.journal.acked < rid - 1:
            self.moved.clear()
            await self.moved.wait()
        self.sent = rid
        self.journal.ack(rid)

    def written(self, rid):
        """The write of record `rid` completed."""
        if not self.acks:
            self.journal.ack(rid)

    def acked(self, upto):
        """The cloud has every record up to `upto`. False for an ack of a
        record never sent on this link (ignored, counted)."""
        if upto > self.sent:
            log.count("bad_ack")
            log.warn("delivery", "ack for record %d that was never sent ignored" % upto)
            return False
        self.journal.ack(upto)
        # Progress: the clock for the next ack starts now, or stops.
        self._waiting_since = ticks_ms() if self.in_flight() > 0 else None
        self.moved.set()
        return True
