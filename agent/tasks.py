# Task plumbing that MicroPython's asyncio lacks (no TaskGroup, no
# asyncio.wait): run a few coroutines until the first one ends.
import asyncio


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
            t.cancel()
        for t in tasks:
            try:
                await t
            except BaseException:  # noqa: BLE001 - cancelled siblings
                pass
    err, res = outcome[0]
    if err is not None:
        raise err
    return res
