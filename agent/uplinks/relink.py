# The one way the agent keeps a link up, the data uplinks and the
# management channel alike: serve it; when it fails, say why in one line,
# back off with full jitter, start over. What differs between links (what
# to close, what "online" means) is the caller's `after`.
import asyncio

from agent import log
from agent.errors import LinkClosed
from agent.hal import format_exc


async def keep_up(name, serve_once, backoff, after=None):
    """Run serve_once() again and again (a supervised task never returns);
    after each end of it, await after() if given, then wait the backoff's
    next delay."""
    while True:
        try:
            await serve_once()
        except LinkClosed as e:
            log.warn(name, "link down: %s" % e)
        except MemoryError as e:
            # No block large enough on a fragmented heap: one line and
            # a retry (the next attempt starts after a collection).
            log.count("out_of_memory")
            log.error(name, "link failed: out of memory (%s)" % e)
        except Exception as e:  # noqa: BLE001 - any link failure means start over
            log.error(name, "link failed: %r\n%s" % (e, format_exc(e)))
        if after is not None:
            await after()
        backoff.down()
        delay = backoff.next_delay()
        log.info(name, "reconnecting in %.1fs" % delay)
        await asyncio.sleep(delay)
