# The Thing's user commands (docs/door-controller.md section 5): what the
# cloud may ask of the user store, with answers a cloud can act on (the
# user, counts, whether more follow), never a PIN. The payload's fields are
# declared where the commands are registered (agent/access/controller.py);
# the users in it are checked by the store itself (agent/access/check.py);
# here their shape and sizes are bounded before anything is walked. Loaded
# with the first user command, not at start (RAM).
#
# The commands run one at a time (a fold or a commit must not see a change
# land half-way), and what takes long runs as steps (agent/access/build.py)
# with the event loop let go every SLICE_MS: the doors poll, and the exit
# button opens, while 10,000 users are rebuilt.
import asyncio

from agent import hal, log
from agent.access import changes
from agent.access import record as R
from agent.access.check import scalar
from agent.codecs import user_fields as uf
from agent.errors import CommandError

SLICE_MS = 5   # the longest a command's work holds the event loop before letting it go (give or take a step)


async def run(access, name, list_max, payload):
    """Command `name` of the Access `access` (agent/access/controller.py)."""
    if access.lock is None:
        access.lock = asyncio.Lock()
    async with access.lock:
        return await globals()[name](_store(access), list_max, payload)


def _store(access):
    if access.store is not None:
        return access.store
    # Not opened at start: tried again, so a flash that has room again (or
    # a folder made writable) needs no restart.
    from agent.access.users import UserStore
    try:
        if access.folder is None:
            raise OSError("no folder for it")
        access.store = UserStore(access.folder, access.cfg["max_users"])
    except OSError as e:
        log.count("user_commands_refused")
        raise CommandError("the user store cannot be opened (%s): user commands are refused and every "
                           "credential is denied (store_error) until it can" % e)
    log.info("access", "the user store opened")
    return access.store


async def steps(gen):
    """Run a generator of steps (agent/access/build.py), letting the event
    loop go every SLICE_MS -> what it returns. Cancelled, the steps are
    closed (a build in progress is discarded; the store stays as it was)."""
    t = hal.ticks_ms()
    try:
        while True:
            next(gen)
            if hal.ticks_diff(hal.ticks_ms(), t) >= SLICE_MS:
                await asyncio.sleep(0)
                t = hal.ticks_ms()
    except StopIteration as e:
        return e.value
    except BaseException:
        gen.close()
        raise


def _refused(e):
    log.count("user_commands_refused")
    return CommandError(str(e))


def _flash(e):
    log.count("user_store_errors")
    log.error("users", "the user store could not write: %s" % e)
    return CommandError("the user store could not write to flash (%s): nothing changed" % e)


def _uid(payload):
    try:
        return uf.user_id(scalar(payload["id"], "id"), "id")
    except ValueError as e:
        raise _refused(e)


def _users(payload):
    if ("user" in payload) == ("users" in payload):
        raise CommandError("user_set takes either 'user' or 'users'")
    if "user" in payload:
        return [payload["user"]]
    users = payload["users"]
    if not isinstance(users, list) or not 1 <= len(users) <= R.PAGE:
        raise CommandError("'users' must be a list of 1 to %d users" % R.PAGE)
    return users


async def user_set(store, list_max, payload):
    users = _users(payload)
    done = 0
    for u in users:
        try:
            changes.put(store, u, False)
        except ValueError as e:
            if done:
                e = "%s (the %d before it are stored)" % (e, done)
            raise _refused(e)
        except OSError as e:
            raise _flash(e)
        done += 1
        await steps(changes.folding(store))
    return {"stored": done, "count": store.count()}


async def user_delete(store, list_max, payload):
    try:
        deleted = changes.delete(store, _uid(payload), False)
    except ValueError as e:
        raise _refused(e)
    except OSError as e:
        raise _flash(e)
    await steps(changes.folding(store))
    return {"deleted": deleted, "count": store.count()}


async def user_enable(store, list_max, payload):
    uid = _uid(payload)
    if not isinstance(payload["enabled"], bool):
        raise CommandError("'enabled' must be true or false")
    if store.get(uid) is None:
        raise CommandError("unknown user %s" % uid)
    try:
        rec = changes.put(store, {"id": uid, "enabled": payload["enabled"]}, False)
    except ValueError as e:
        raise _refused(e)
    except OSError as e:
        raise _flash(e)
    await steps(changes.folding(store))
    return {"user": R.public(rec)}


async def user_get(store, list_max, payload):
    uid = _uid(payload)
    rec = store.get(uid)
    if rec is None:
        raise CommandError("unknown user %s" % uid)
    return {"user": R.public(rec)}


async def user_list(store, list_max, payload):
    after = None
    if payload.get("after") is not None:
        try:
            after = uf.user_id(scalar(payload["after"], "after"), "after")
        except ValueError as e:
            raise _refused(e)
    recs, more = store.page(after, min(payload.get("count", list_max), list_max))
    return {"users": [R.public(r) for r in recs], "more": more, "count": store.count()}


async def users_clear(store, list_max, payload):
    try:
        store.clear()
    except OSError as e:
        raise _flash(e)
    return {"count": 0}


async def users_sync(store, list_max, payload):
    phase = payload["phase"]
    if ("users" in payload) != (phase == "page"):
        raise CommandError("users_sync: 'users' goes with the phase 'page' only")
    try:
        if phase == "begin":
            store.sync_begin()
            return {"phase": phase, "page_max": R.PAGE}
        if phase == "page":
            users = payload["users"]
            if not isinstance(users, list) or len(users) > R.PAGE:
                raise CommandError("'users' must be a list of at most %d users" % R.PAGE)
            return {"phase": phase, "received": await steps(changes.sync_adding(store, users))}
        return {"phase": phase, "count": await steps(changes.committing(store))}
    except ValueError as e:
        raise _refused(e)
    except OSError as e:
        store.sync_abort()
        raise _flash(e)
