# Records waiting for the uplink. Bounded: when full, the oldest record is
# evicted, counted and logged, never dropped silently. A record leaves only
# after the uplink says it was sent (peek, send, then pop), so a link that
# dies mid-send resends it.
import asyncio

from agent import log


class Outbox:
    __slots__ = ("_items", "_max", "_ready", "evicted")

    def __init__(self, max_items):
        self._items = []
        self._max = max_items
        self._ready = asyncio.Event()
        self.evicted = 0

    def __len__(self):
        return len(self._items)

    def put(self, record):
        if len(self._items) >= self._max:
            self._items.pop(0)
            self.evicted += 1
            log.count("outbox_evicted")
            log.warn("outbox", "full (%d records): evicted the oldest" % self._max)
        self._items.append(record)
        self._ready.set()

    async def peek(self):
        while not self._items:
            self._ready.clear()
            await self._ready.wait()
        return self._items[0]

    def pop(self):
        self._items.pop(0)
