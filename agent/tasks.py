# Task plumbing that MicroPython's asyncio lacks (no TaskGroup, no
# asyncio.wait): run a few coroutines until the first one ends.
import asyncio

from agent import log

# A cancel can be lost: on MicroPython, cancelling a task just as an inner
# wait_for() times out turns the CancelledError into a TimeoutError, and code
# that retries on timeouts (as the WebSocket library once used here did)
# swallows it.
# So a cancelled task is cancelled again until it has really ended.
RECANCEL_EVERY_S = 0.02
RECANCEL_TRIES = 100


async def cancel_and_wait(task):
    """Cancel `task` and return once it has ended (bounded: ~2 s)."""
    for _ in range(RECANCEL_TRIES):
        if task.done():
            return True
        task.cancel()
        await asyncio.sleep(RECANCEL_EVERY_S)
    log.count("tasks_stuck")
    log.error("tasks", "a task ignored cancellation for %.0fs" % (RECANCEL_TRIES * RECANCEL_EVERY_S))
    return False


async def first_done(*coros):
    """Run coroutines together; when one ends (or fails), cancel the rest and
    return its result or raise its exception."""
    done = asyncio.Event()
    outcome = []

    async def guard(coro):
        try:
            res = await coro
            outcome.append((None, res))
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - handed to the caller below
            outcome.append((e, None))
        done.set()

    tasks = [asyncio.create_task(guard(c)) for c in coros]
    try:
        await done.wait()
    finally:
        for t in tasks:
            await cancel_and_wait(t)
    err, res = outcome[0]
    if err is not None:
        raise err
    return res
