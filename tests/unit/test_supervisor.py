import asyncio

from agent.supervisor import Supervisor
from agent.tasks import first_done


async def test_failed_task_restarts_and_others_keep_running():
    sup = Supervisor()
    runs = {"flaky": 0, "steady": 0}

    async def flaky():
        runs["flaky"] += 1
        await asyncio.sleep(0.01)
        raise RuntimeError("sensor unplugged")

    async def steady():
        while True:
            runs["steady"] += 1
            await asyncio.sleep(0.01)

    sup.add("flaky", flaky, base_s=0.01, cap_s=0.02)
    sup.add("steady", steady)
    task = asyncio.create_task(sup.run())
    await asyncio.sleep(0.4)
    sup.stop()
    await asyncio.wait_for(task, 2)
    assert runs["flaky"] >= 3
    assert sup.restarts["flaky"] >= 2
    assert "steady" not in sup.restarts
    assert runs["steady"] > 10


async def test_first_done_returns_and_cancels_rest():
    cancelled = []

    async def slow():
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    async def quick():
        await asyncio.sleep(0.01)
        return 7

    assert await asyncio.wait_for(first_done(slow(), quick()), 2) == 7
    assert cancelled == [True]


async def test_first_done_raises_first_failure():
    async def boom():
        await asyncio.sleep(0.01)
        raise ValueError("x")

    async def slow():
        await asyncio.sleep(10)

    try:
        await asyncio.wait_for(first_done(slow(), boom()), 2)
    except ValueError as e:
        assert str(e) == "x"
    else:
        raise AssertionError("no error")


async def test_cancel_that_is_swallowed_is_repeated():
    # What a WebSocket library's recv loop did (micropython-websockets) when a cancel arrives as
    # its inner wait_for times out: it treats it as a timeout and goes on.
    from agent.tasks import cancel_and_wait
    swallowed = []

    async def stubborn():
        while True:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                if not swallowed:
                    swallowed.append(True)
                    continue  # the first cancel is lost
                raise

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0.01)
    assert await asyncio.wait_for(cancel_and_wait(task), 5) is True
    assert swallowed == [True] and task.done()
