import asyncio

from agent import log
from agent.outbox import Outbox


async def test_peek_waits_then_pop_after_send():
    box = Outbox(5)

    async def later():
        await asyncio.sleep(0.05)
        box.put(("event", "door_opened", {}))

    asyncio.create_task(later())
    rec = await asyncio.wait_for(box.peek(), 2)
    assert rec[1] == "door_opened"
    assert len(box) == 1  # still there until the send completed
    box.pop()
    assert len(box) == 0


def test_full_evicts_oldest_and_counts():
    before = log.counters.get("outbox_evicted", 0)
    box = Outbox(3)
    for i in range(5):
        box.put(("telemetry", None, {"i": i}))
    assert box.evicted == 2
    assert log.counters["outbox_evicted"] - before == 2
    assert [r[2]["i"] for r in box._items] == [2, 3, 4]
