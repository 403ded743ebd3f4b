"""The bench's hub: what every protocol shares, behind one public API.

It holds the live peers (one `Link` each, whatever the protocol or
transport), which device is online on which link, the admins subscribed to
broadcasts, the routing of admin commands to devices, the counters, the
observer (the live log) and the store. Protocol modules (json_ws, xml_ws,
cloudsolution) depend on this module and on the agent's codecs, never on
each other; the app (app.py) wires them to aiohttp.

A device protocol plugs in by registering a `CommandEncoder`: how an admin
command is written in its wire format (None when it has no way to say it).
Routing, command ids, the commands table, the broadcasts and the observer
are the hub's, so every protocol behaves alike for admins.

Who may do what is the hub's too (`Policy`): token checks run off the event
loop (a scrypt hash takes ~50 ms), two at a time at most, and a token once
verified is remembered against its stored hash, so a CloudSolution device,
which sends its token with every request, pays once per bench run.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import json
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from agent import records

from . import thing_map, tokens
from .store import BenchStore, Conflict, User

log = logging.getLogger("doorlink.bench")

Observer = Callable[[str, dict], Any]
# An app session's view of the broadcasts (hub.watch): awaited with every
# broadcast object; the session filters by its user's devices.
Watcher = Callable[[dict], Awaitable[None]]
# (device_id, command name, payload, command id) -> the wire message, or
# None when the protocol has no way to say it
CommandEncoder = Callable[[str, str, dict, "str | int"], "str | None"]

ADMIN = "admin"
DEVICE = "device"
ANONYMOUS = "(anonymous, loopback)"   # an admin let in without a token


@dataclass(frozen=True)
class Policy:
    """Who gets in. `require_auth`: admins must give a token (always when
    the bench listens beyond loopback). `trust_sn_only`: CloudSolution
    devices may send no token (legacy terminals on a closed network)."""

    require_auth: bool = False
    trust_sn_only: bool = False


class Kept(NamedTuple):
    """A record just stored: the broadcast for admins, and what the
    observer is told."""

    broadcast: dict
    notices: list


__all__ = ["ADMIN", "ANONYMOUS", "DEVICE", "CommandRefused", "Conflict", "Hub", "Kept", "Link", "Policy", "User",
           "Watcher"]


class CommandRefused(Exception):
    """An admin command the hub cannot deliver; `kind` is its error counter."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class Link:
    """One peer: where to send and how to hang up (given by the transport),
    and who it is once a protocol has claimed it. `session` belongs to the
    protocol that claimed the link (its per-connection state)."""

    __slots__ = ("_close", "_send", "admin", "announce", "closed", "device_id", "peer", "protocol", "role",
                 "session")

    def __init__(self, peer: str, send: Callable[[str], Awaitable[None]],
                 close: Callable[[int, str], Awaitable[None]]) -> None:
        self.peer = peer
        self._send = send
        self._close = close
        self.protocol: str | None = None
        self.role: str | None = None
        self.device_id: str | None = None
        self.session: Any = None
        self.closed = False
        self.announce: dict | None = None   # claimed, online not yet announced (see Hub.after_reply)
        self.admin: str | None = None       # the admin it authenticated as (a token on the upgrade)

    async def send(self, text: str) -> bool:
        """False when the peer is gone (its own handler cleans up); a queue
        that is full raises CommandRefused."""
        if self.closed:
            return False
        try:
            await self._send(text)
            return True
        except CommandRefused:
            raise
        except Exception:  # noqa: BLE001 - any failure to write means the peer is gone
            return False

    async def close(self, code: int, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            await self._close(code, reason)
        except Exception:  # noqa: BLE001, S110 - closing a dead link is best effort
            pass


SENT_COMMANDS_KEPT = 1000   # command ids remembered for matching results
ADMIN_SEND_S = 2.0          # longest wait for one admin to take one broadcast
TOKEN_CHECKS_AT_ONCE = 2    # scrypt checks in flight (each ~50 ms of a core, 16 MiB)
VERIFIED_KEPT = 4096        # tokens remembered as verified
# scrypt checks that may wait for a thread. Each wrong token costs a full
# check, and a check runs on after its peer hung up: 1,000 bad requests in
# 3 s once queued 25 s of checks ahead of every real device. Past this many
# waiting, a check is refused at once (counted `auth_busy`): the device
# retries with its backoff and finds a short queue.
TOKEN_CHECKS_WAITING = 16

# WebSocket close codes the hub uses (RFC 6455).
GOING_AWAY = 1001
POLICY_VIOLATION = 1008


def _without_pins(payload: Any) -> Any:
    """A command payload as the bench stores and shows it: a user's PIN
    (user_set, users_sync) only as "set" or null, never its digits."""
    if not isinstance(payload, dict):
        return payload
    users = [payload["user"]] if isinstance(payload.get("user"), dict) else payload.get("users")
    if not isinstance(users, list) or not any(isinstance(u, dict) and u.get("pin") is not None for u in users):
        return payload
    shown = [dict(u, pin="set") if isinstance(u, dict) and u.get("pin") is not None else u for u in users]
    return dict(payload, user=shown[0]) if "user" in payload else dict(payload, users=shown)


class Hub:
    def __init__(self, store: BenchStore, observer: Observer | None = None, max_message: int = 65536,
                 policy: Policy | None = None) -> None:
        self.store = store
        self.max_message = max_message
        self.policy = policy or Policy()
        self.devices: dict[str, Link] = {}
        self.admins: set[Link] = set()
        self.errors: Counter = Counter()
        self.counts: Counter = Counter()
        self.duplicates = 0     # resent records already stored (acked again, not stored twice)
        self._observer = observer
        self._encoders: dict[str, tuple[str, CommandEncoder]] = {}
        self._next_command = 0
        # (device id, str(command id)) -> (id as given, command): a result
        # names a command only when the device it was sent to answers it.
        self._sent: dict[tuple[str, str], tuple[str | int, str]] = {}
        # (device, command id) -> the future ask() waits on for its result
        self._asked: dict[tuple[str, str], asyncio.Future] = {}
        self._tasks: set[asyncio.Task] = set()
        self._checks = concurrent.futures.ThreadPoolExecutor(TOKEN_CHECKS_AT_ONCE, "bench-token")
        self._verified: set[bytes] = set()
        self._waiting = 0       # token checks queued or running
        # app sessions (hub.watch): watcher -> what to call when it is dropped for being slow
        self._watchers: dict[Watcher, Callable[[], Any] | None] = {}
        self._attrs: dict[str, dict[str, Any]] = {}   # device id -> its data points (thing_map)

    # -- plumbing ------------------------------------------------------------------
    def register_protocol(self, name: str, title: str, encode_command: CommandEncoder) -> None:
        """A device protocol: its short name (links, stored rows), the name
        users know it by, and how it writes an admin command."""
        self._encoders[name] = (title, encode_command)

    def notify(self, kind: str, data: dict) -> None:
        """Tell the observer (the live log); a broken observer never takes
        the bench down."""
        if self._observer is None:
            return
        try:
            self._observer(kind, data)
        except Exception:  # noqa: BLE001, S110
            pass

    def count_error(self, kind: str) -> None:
        """Count an error that is reported elsewhere (or in bulk)."""
        self.errors[kind] += 1

    def error(self, link: Link | None, kind: str, message: str) -> None:
        """Count and report an error; the protocol answers in its own format."""
        self.errors[kind] += 1
        self.notify("error", {"peer": link.peer if link else None, "message": message, "kind": kind,
                              "device_id": link.device_id if link else None})

    def spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- credentials -------------------------------------------------------------------
    def _known(self, stored: str, token: str) -> bytes:
        return hashlib.sha256(f"{stored}\0{token}".encode("utf-8", "surrogatepass")).digest()

    async def _verify(self, stored: str | None, token: str) -> bool:
        """tokens.verify off the event loop; a pair verified before is
        known at once (a wrong token always pays the full price)."""
        if stored is not None and self._known(stored, token) in self._verified:
            return True
        if self._waiting >= TOKEN_CHECKS_WAITING:
            self.errors["auth_busy"] += 1
            return False
        self._waiting += 1
        try:
            ok = await asyncio.get_running_loop().run_in_executor(self._checks, tokens.verify, stored, token)
        finally:
            self._waiting -= 1
        if ok:
            if len(self._verified) >= VERIFIED_KEPT:
                self._verified.clear()
            self._verified.add(self._known(stored, token))
        return ok

    async def check_device(self, device_id: str, token: str) -> bool:
        """The device's token is right. An unknown device costs the same as
        a wrong token."""
        return await self._verify(self.store.device_token_hash(device_id), token)

    async def check_admin(self, token: str) -> str | None:
        """The name of the admin whose token this is, or None. Every
        admin's hash is tried (at least one: with no admin at all, a
        dummy), so the answer takes as long whoever asks."""
        admins = self.store.admin_token_hashes() or [(None, None)]
        found = None
        for name, stored in admins:
            if await self._verify(stored, token) and found is None:
                found = name
        return found

    async def check_user(self, appid: str | None, uid: str, token: str) -> User | None:
        """The app user `uid` if `token` is its token (and `appid`, when
        given, its app); None otherwise. An unknown user costs the same
        as a wrong token."""
        found = self.store.user_token_hash(uid) if isinstance(uid, str) else None
        ok = await self._verify(found[1] if found else None, str(token))
        if not ok or found is None or (appid is not None and appid != found[0]):
            return None
        return self.store.user(uid)

    async def user_for_token(self, token: str) -> User | None:
        """The app user whose token this is (an API that logs in with a
        token alone), or None. Every user's hash is tried, as check_admin
        does, so the answer takes as long whoever asks."""
        users = self.store.user_token_hashes() or [("", None)]
        found = None
        for uid, stored in users:
            if await self._verify(stored, str(token)) and found is None:
                found = uid
        return self.store.user(found) if found else None

    # -- app users: bindings, watchers, data points ------------------------------------
    async def bind(self, uid: str, device_id: str) -> bool:
        """Bind a device to a user (store.bind; ValueError for an unknown
        user); watchers hear {"type": "binding_changed", ...}. False when
        it was bound already (nothing is announced)."""
        if not self.store.bind(uid, device_id):
            return False
        await self._tell_watchers({"type": "binding_changed", "uid": uid, "device_id": device_id, "bound": True})
        return True

    async def unbind(self, uid: str, device_id: str) -> bool:
        """Unbind; watchers hear of it. False when it was not bound."""
        if not self.store.unbind(uid, device_id):
            return False
        await self._tell_watchers({"type": "binding_changed", "uid": uid, "device_id": device_id, "bound": False})
        return True

    def watch(self, cb: Watcher, on_drop: Callable[[], Any] | None = None) -> None:
        """`cb(obj)` is awaited with every broadcast (the objects admins
        get, device_status included) and every binding change. One that
        takes longer than ADMIN_SEND_S is dropped (counted `slow_watcher`)
        and `on_drop()` called: its session should hang up."""
        self._watchers[cb] = on_drop

    def unwatch(self, cb: Watcher) -> None:
        self._watchers.pop(cb, None)

    def attrs(self, device_id: str) -> dict[str, Any]:
        """The device's current data points (thing_map), as far as the
        broadcasts since the bench started have told them, and `online`."""
        return dict(self._attrs.get(device_id, {}), online=device_id in self.devices)

    def _keep_attrs(self, obj: dict) -> None:
        device_id = obj.get("device_id")
        if isinstance(device_id, str):
            changed = thing_map.attrs_from_broadcast(obj)
            if changed:
                self._attrs.setdefault(device_id, {}).update(changed)

    async def _tell_watchers(self, obj: dict) -> None:
        watchers = list(self._watchers)
        if not watchers:
            return
        results = await asyncio.gather(*(self._watch_or_drop(w, obj) for w in watchers))
        for watcher, ok in zip(watchers, results, strict=True):
            if not ok and watcher in self._watchers:
                on_drop = self._watchers.pop(watcher)
                if on_drop is not None:
                    try:
                        result = on_drop()
                        if asyncio.iscoroutine(result):
                            self.spawn(result)
                    except Exception:  # noqa: BLE001, S110 - a broken session never takes the hub down
                        pass

    async def _watch_or_drop(self, watcher: Watcher, obj: dict) -> bool:
        try:
            await asyncio.wait_for(watcher(obj), ADMIN_SEND_S)
            return True
        except TimeoutError:
            self.error(None, "slow_watcher", "an app session stopped reading; disconnected")
            return False
        except Exception as e:  # noqa: BLE001 - one broken session must not stop the others
            self.error(None, "watcher", f"an app session failed on a broadcast: {type(e).__name__}: {e}")
            return True

    # -- devices ---------------------------------------------------------------------
    def claim(self, link: Link, device_id: str, protocol: str) -> bool:
        """`link` is now the authenticated link of `device_id` over
        `protocol`. Returns True when it replaced an older link (closed).
        Admins hear of it from after_reply(), once the device has its answer:
        an admin quick to command must not reach it before it is registered."""
        link.role, link.device_id, link.protocol = DEVICE, device_id, protocol
        old = self.devices.get(device_id)
        # Swap first: the old link's cleanup sees it is no longer current and
        # so does not report the device offline.
        self.devices[device_id] = link
        if old is not None and old is not link:
            # A device back after a half-open link does this; so does anyone
            # else holding its token. Either way a human may want to know.
            message = (f"device {device_id}: a new {protocol} connection from {link.peer} replaced the live "
                       f"{old.protocol} one from {old.peer}")
            log.warning("%s", message)
            self.error(link, "replaced", message)
            self.spawn(old.close(POLICY_VIOLATION, "replaced by a new connection"))
        self.store.set_status(device_id, True)
        replaced = old is not None and old is not link
        link.announce = {"replaced": replaced}
        return replaced

    async def after_reply(self, link: Link) -> None:
        """The transport has sent the protocol's replies: announce a device
        that was claimed meanwhile to admins and the observer."""
        extra, link.announce = link.announce, None
        if extra is None or self.devices.get(link.device_id) is not link:
            return
        await self.broadcast({"type": "device_status", "device_id": link.device_id, "status": "online"})
        self.notify("device_online", {"device_id": link.device_id, "peer": link.peer, "protocol": link.protocol,
                                      **extra})

    async def release(self, link: Link) -> None:
        """The link is gone: an admin unsubscribes; a device goes offline if
        this was its current link."""
        link.closed = True
        if link.role == ADMIN:
            if link in self.admins:
                self.admins.discard(link)
                self.notify("admin_offline", {"peer": link.peer})
        elif link.role == DEVICE and self.devices.get(link.device_id) is link:
            del self.devices[link.device_id]
            try:
                self.store.set_status(link.device_id, False)
            except Exception:  # noqa: BLE001, S110 - the store is already closed at shutdown
                pass
            await self.broadcast({"type": "device_status", "device_id": link.device_id, "status": "offline"})
            self.notify("device_offline", {"device_id": link.device_id, "peer": link.peer,
                                           "protocol": link.protocol})

    def online(self) -> list[str]:
        return sorted(self.devices)

    # -- admins --------------------------------------------------------------------------
    async def subscribe(self, link: Link, admin: str | None = None) -> None:
        """An admin (authenticated by the protocol: `admin` is its name)
        joins the broadcasts and is told who is online."""
        first = link.role is None
        link.role = ADMIN
        if admin is not None:
            link.admin = admin
        self.admins.add(link)
        for device_id in self.online():
            await link.send(json.dumps({"type": "device_status", "device_id": device_id, "status": "online"}))
        if first:
            self.notify("admin_online", {"peer": link.peer, "admin": link.admin})

    async def broadcast(self, obj: dict) -> None:
        """Admins get `obj` as JSON, watchers (app sessions) as it is; the
        data points it changes are kept for hub.attrs."""
        self._keep_attrs(obj)
        admins = list(self.admins)
        if self._watchers:
            if admins:
                await asyncio.gather(self._send_admins(admins, obj), self._tell_watchers(obj))
            else:
                await self._tell_watchers(obj)
            return
        if admins:
            await self._send_admins(admins, obj)

    async def _send_admins(self, admins: list[Link], obj: dict) -> None:
        text = json.dumps(obj)
        results = await asyncio.gather(*(self._send_or_drop(a, text) for a in admins))
        for admin, ok in zip(admins, results, strict=True):
            if not ok:
                self.admins.discard(admin)

    async def _send_or_drop(self, admin: Link, text: str) -> bool:
        """An admin that stops reading would hold every device's messages
        (a broadcast waits for its full socket): past ADMIN_SEND_S it is
        dropped and hung up on."""
        try:
            return await asyncio.wait_for(admin.send(text), ADMIN_SEND_S)
        except TimeoutError:
            self.error(admin, "slow_admin", f"admin {admin.peer} stopped reading; disconnected")
            self.spawn(admin.close(GOING_AWAY, "not reading"))
            return False

    # -- what devices report ----------------------------------------------------------------
    # keep_*() store a record (synchronously: a batch runs them in one
    # transaction) and return what to publish(), or None for a resend;
    # a record whose key is stored with other content raises Conflict,
    # counted here. telemetry(), event() and log_record() do both.
    def _stored(self, link: Link, store: Callable[[], Any]) -> Any:
        try:
            return store()
        except Conflict as c:
            self.error(link, "conflict", str(c))
            raise

    def keep_telemetry(self, link: Link, payload: dict, record_id: int | None = None,
                       device_time: float | None = None) -> Kept | None:
        received_at = self._stored(link, lambda: self.store.add_telemetry(
            link.device_id, payload, record_id=record_id, device_time=device_time))
        out = {"type": records.TELEMETRY, "device_id": link.device_id, "payload": payload,
               "received_at": received_at}
        return self._record(out, received_at is not None, record_id, device_time)

    def keep_event(self, link: Link, event_type: str, payload: dict, record_id: int | None = None,
                   device_time: float | None = None) -> Kept | None:
        """An event (door_opened, command_result, ...). One named like a
        record kind (a JSON device's punch or admin log) is also reported
        to the observer as that record."""
        received_at = self._stored(link, lambda: self.store.add_event(
            link.device_id, event_type, payload, record_id=record_id, device_time=device_time))
        out = {"type": records.EVENT, "device_id": link.device_id, "event_type": event_type, "payload": payload,
               "received_at": received_at}
        kept = self._record(out, received_at is not None, record_id, device_time)
        if kept and event_type in (records.PUNCH, records.ADMIN_LOG) and isinstance(payload, dict):
            kept.notices.append((event_type, {"device_id": link.device_id, "protocol": link.protocol,
                                              "log_id": None if record_id is None else str(record_id),
                                              "value": payload}))
        return kept

    def keep_log(self, link: Link, kind: str, log_id: str, value: dict, fields: dict) -> Kept | None:
        """An attendance record a terminal sent (punch or admin log): `value`
        in the record vocabulary (agent/records.py), `fields` as they came on
        the wire. Stored once per (device, log id); admins get the same event
        a JSON device sends for it."""
        if kind == records.PUNCH:
            new = self._stored(link, lambda: self.store.add_punch(
                link.device_id, link.protocol, log_id, value[records.USER], value[records.WHEN], fields))
        else:
            new = self._stored(link, lambda: self.store.add_admin_log(
                link.device_id, link.protocol, log_id, value.get(records.ADMIN, ""), value[records.USER],
                value[records.ACTION], value[records.WHEN], fields))
        if not new:
            self.duplicates += 1
            return None
        out = {"type": records.EVENT, "device_id": link.device_id, "event_type": kind, "payload": value,
               "log_id": log_id, "received_at": time.time()}
        return Kept(out, [(kind, {"device_id": link.device_id, "protocol": link.protocol, "log_id": log_id,
                                  "value": value})])

    def _record(self, out: dict, new: bool, record_id: int | None, device_time: float | None) -> Kept | None:
        if record_id is not None:
            out["id"] = record_id
        if not new:
            self.duplicates += 1
            return None
        if device_time is not None:
            out["time"] = device_time
        return Kept(out, [(out["type"], out)])

    async def publish(self, kept: Kept | None) -> bool:
        """Admins and the observer hear of a record just stored. False for
        None (a resend: already told)."""
        if kept is None:
            return False
        self._answered(kept.broadcast)
        await self.broadcast(kept.broadcast)
        for kind, data in kept.notices:
            self.notify(kind, data)
        return True

    async def telemetry(self, link: Link, payload: dict, record_id: int | None = None,
                        device_time: float | None = None) -> bool:
        """Store a sample, broadcast it, tell the observer. False for a
        record already stored (same device, same record id)."""
        return await self.publish(self.keep_telemetry(link, payload, record_id, device_time))

    async def event(self, link: Link, event_type: str, payload: dict, record_id: int | None = None,
                    device_time: float | None = None) -> bool:
        """Store an event and fan it out; False for a resend."""
        return await self.publish(self.keep_event(link, event_type, payload, record_id, device_time))

    async def log_record(self, link: Link, kind: str, log_id: str, value: dict, fields: dict) -> bool:
        """Store a punch or admin log (keep_log) and fan it out; False for a
        duplicate."""
        return await self.publish(self.keep_log(link, kind, log_id, value, fields))

    async def batch(self, link: Link, steps: Sequence[Callable[[], Kept | None]]) -> tuple[int, Conflict | None]:
        """Run keep_* steps in one transaction: all of them are stored or,
        if one fails, none. A Conflict stops the batch before it (the
        records before it stay stored, the offer is kept): returns how many
        steps were taken and that conflict."""
        kept: list[Kept | None] = []
        conflict = None
        with self.store.transaction():
            for step in steps:
                try:
                    kept.append(step())
                except Conflict as c:
                    conflict = c
                    break
        for k in kept:
            await self.publish(k)
        return len(kept), conflict

    # -- commands -----------------------------------------------------------------------------
    def command_id(self, given: str | int | None = None) -> str | int:
        if given is not None:
            return given
        self._next_command += 1
        return f"cmd-{self._next_command}"

    async def route_command(self, origin: Link | None, device_id: str, name: str, payload: dict,
                            command_id: str | int) -> None:
        """Send an admin's command to the device in its protocol; raises
        CommandRefused when it cannot (offline, no way to say it)."""
        target = self.devices.get(device_id)
        if target is None or target.closed:
            raise CommandRefused("offline", f"device {device_id} is not online")
        title, encode = self._encoders.get(target.protocol or "", (target.protocol, None))
        wire = encode(device_id, name, payload, command_id) if encode else None
        if wire is None:
            raise CommandRefused("invalid", f"command {name!r} has no {title} form for device {device_id}")
        if not await target.send(wire):
            raise CommandRefused("offline", f"device {device_id} is not online")
        kept = _without_pins(payload)
        self.store.add_command(str(command_id), device_id, name, kept)
        if len(self._sent) >= SENT_COMMANDS_KEPT:
            self._sent.pop(next(iter(self._sent)))
        self._sent[(device_id, str(command_id))] = (command_id, name)
        self.notify("command", {"type": "command", "device_id": device_id, "command": name, "payload": kept,
                                "id": command_id, "peer": origin.peer if origin else None})

    def _answered(self, out: dict) -> None:
        # A command_result event (a JSON device sends it as one; the XML and
        # HTTP protocols make one in command_result()) answers an ask().
        payload = out.get("payload")
        if out.get("event_type") == records.COMMAND_RESULT and isinstance(payload, dict):
            answer = self._asked.get((str(out.get("device_id")), str(payload.get("id"))))
            if answer is not None and not answer.done():
                answer.set_result(payload)

    async def ask(self, origin: Link | None, device_id: str, name: str, payload: dict,
                  timeout: float) -> dict:
        """Send a command (as route_command: CommandRefused when it cannot
        go) and wait for the device's answer: the command_result payload
        admins get ({"id", "command", "ok", "result" or "error"}).
        TimeoutError when none comes within `timeout` s. The one way a
        bench protocol waits for a device (the app APIs use it)."""
        command_id = self.command_id()
        key = (device_id, str(command_id))
        answer = self._asked[key] = asyncio.get_running_loop().create_future()
        try:
            await self.route_command(origin, device_id, name, payload, command_id)
            return await asyncio.wait_for(answer, timeout)
        finally:
            self._asked.pop(key, None)

    async def command_result(self, link: Link, command_id: str | int | None, ok: bool, result: Any = None,
                             error: str | None = None, **extra: Any) -> None:
        """A device answered a command in its own protocol: admins get the
        command_result event a JSON device sends, with the command's id as
        the admin gave it (an XML TransID is text) and its name, so one
        admin client works with every device."""
        given, name = self._sent.pop((link.device_id, str(command_id)), (command_id, None))
        if name is None and command_id is not None:
            # sent before a bench restart (to this device: another device
            # answering that id is not answering that command)
            name = self.store.command_name(str(command_id), link.device_id)
        payload: dict[str, Any] = {"id": given, "command": name, "ok": ok, **extra}
        if ok:
            payload["result"] = result if result is not None else {}
        else:
            payload["error"] = error or "failed"
        await self.event(link, records.COMMAND_RESULT, payload)

    # -- reports -------------------------------------------------------------------------------
    def stats(self) -> dict:
        return {
            "messages": sum(v for k, v in self.counts.items() if k != "frames"),
            "frames": self.counts["frames"],
            "by_type": {k: v for k, v in self.counts.items() if k != "frames"},
            "errors": dict(self.errors),
            "errors_total": sum(self.errors.values()),
            "duplicates": self.duplicates,
            "devices_online": len(self.devices),
            "admins": len(self.admins),
        }

    async def shutdown(self) -> None:
        links = list(self.devices.values()) + list(self.admins)
        await asyncio.gather(*(link.close(GOING_AWAY, "bench shutting down") for link in links),
                             return_exceptions=True)
        for task in list(self._tasks):
            task.cancel()
        self._checks.shutdown(wait=False, cancel_futures=True)

    # -- added for the developer-center API (devcenter.py, helper D) ------------------------------
    def token_checks_full(self) -> bool:
        """No token check can queue now (each would be refused, counted
        `auth_busy`): an API that can say "try again" says it up front."""
        return self._waiting >= TOKEN_CHECKS_WAITING
