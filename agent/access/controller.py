# The access controller: a credential presented at a door -> a decision,
# journaled, and the door opened for a grant (docs/door-controller.md
# section 5). Works with no network: the store is on flash, the policy is
# pure. Every decision is an event: `unlocked` (journaled by the door
# before its relay moves) or `access_denied` with the reason; a denial
# that cannot be journaled is counted. A PIN never reaches an event, a log
# line or an answer.
import asyncio
import os

from agent import clock, hal, log
from agent import records as r
from agent.access import policy
from agent.access import record as R
from agent.errors import CommandError
from agent.thing import ANY, INT, ONE_OF

UNKNOWN_CARD = "unknown_card"
UNKNOWN_PIN = "unknown_pin"
UNKNOWN_FINGER = "unknown_fingerprint"
UNKNOWN_DOOR = "unknown_door"
AMBIGUOUS = "ambiguous"
WRONG_PIN = "wrong_pin"
PIN_LOCKED_OUT = "pin_locked_out"
ANTI_PASSBACK = "anti_passback"
NOT_JOURNALED = "not_journaled"
STORE_ERROR = "store_error"
CLOUD_DENIED = "cloud_denied"

# The user commands and the fields their payloads may hold (agent/thing.py);
# their code (agent/access/commands.py) is loaded with the first one.
COMMANDS = (
    ("user_set", {"user": (ANY,), "users": (ANY,)}, ()),
    ("user_delete", {"id": (ANY,)}, ("id",)),
    ("user_enable", {"id": (ANY,), "enabled": (ANY,)}, ("id", "enabled")),
    ("user_get", {"id": (ANY,)}, ("id",)),
    ("user_list", {"after": (ANY,), "count": (INT, 1, R.PAGE)}, ()),
    ("users_clear", {}, ()),
    ("users_sync", {"phase": (ONE_OF, ("begin", "page", "commit")), "users": (ANY,)}, ("phase",)),
)
# The largest user as JSON is under 1,500 bytes: a 32-character id and
# name of characters JSON escapes as surrogate pairs (12 bytes each), 4
# cards, 8 schedule entries, 8 door names (plain: check.DOOR_CHARS) and the
# rest. user_list answers at most max_frame / 1,500 users (10 in the
# default 16 KB frame), so its answer always fits a frame.
USER_JSON_MAX = 1500


class Access:
    __slots__ = ("thing", "store", "folder", "doors", "gmt", "cfg", "ask_cloud", "ticks", "lock", "_pins",
                 "_passback")

    def __init__(self, thing, store, doors, site, cfg, folder=None):
        """`doors`: peripherals/doors.py Doors (get(name) -> Door or None);
        `cfg`: the board's "access" section (config.ACCESS_FIELDS); `store`
        None: it could not be opened (from `folder`, which the user
        commands try again)."""
        self.thing = thing
        self.store = store
        self.folder = folder
        self.doors = doors
        self.gmt = site["gmt"]
        self.cfg = cfg
        # async (door, source, credential, user id or None) -> True / False /
        # None (no opinion): a cloud that decides (CloudSolution `access`),
        # asked first when cfg["cloud_decides_ms"] > 0; set by its uplink.
        self.ask_cloud = None
        self.ticks = hal.ticks_ms   # lockouts and anti-passback run on it (a test's own clock)
        self._pins = None  # agent/access/lockout.py's, made with the first PIN (a card-only board needs none)
        self.lock = None   # the user commands' (agent/access/commands.py), made with the first
        # Its table (4 KB) only where a door uses it: made at the first grant there.
        self._passback = None
        list_max = max(1, min(R.PAGE, site["max_frame"] // USER_JSON_MAX))
        for name, fields, required in COMMANDS:
            thing.command(name, _command(name, self, list_max), fields, required)

    async def present(self, door_name, source, card=None, pin=None, fp=None):
        """A credential at a door -> (granted, user id or None, denial reason or None)."""
        credential = str(card) if card is not None else (str(fp) if fp is not None else None)
        now_ms = self.ticks()
        door = self.doors.get(door_name)
        if door is None:
            return self._deny(door_name, source, credential, None, UNKNOWN_DOOR)
        if pin is not None and self._lockout().locked(door_name, card, now_ms):
            return self._deny(door_name, source, credential, None, PIN_LOCKED_OUT)
        if card == 0:
            # No card is 0 (user_fields.card): a frame of zeros is anyone's
            # forgery, whatever a store written before that rule (or a cloud
            # that decides) makes of it.
            return self._deny(door_name, source, credential, None, UNKNOWN_CARD)
        if self.store is None:
            # Not opened at start (logged then): doors and the exit button run on.
            log.count("access_store_errors")
            rec, reason = None, STORE_ERROR
        else:
            try:
                rec, reason = self._identify(door_name, card, pin, fp, now_ms)
            except OSError as e:
                log.count("access_store_errors")
                log.error("access", "the user store cannot be read: %s" % e)
                rec, reason = None, STORE_ERROR
        uid = rec[R.ID] if rec is not None else None
        # A cloud that decides may know users this board does not: it is
        # asked about every card and finger (a PIN never leaves the board).
        if self.cfg["cloud_decides_ms"] and self.ask_cloud is not None and pin is None:
            verdict = await self._ask_cloud(door_name, source, credential, uid)
            if verdict is False:
                return self._deny(door_name, source, credential, uid, CLOUD_DENIED)
            if verdict is True:
                return await self._grant(door, "cloud_access", credential, uid, now_ms)
        if reason is None:
            reason = policy.decide(rec, door_name, clock.now(), self.gmt)
        if reason is None and self._passback is not None and door.cfg["anti_passback_s"] \
                and self._passback.blocked(uid, door_name, now_ms):
            reason = ANTI_PASSBACK
        if reason is None:
            reason = door.refusal()
        if reason is not None:
            return self._deny(door_name, source, credential, uid, reason)
        done = await self._grant(door, source, credential, uid, now_ms)
        if done[0] and pin is not None:
            self._pins.granted(door_name, card, now_ms)
        return done

    def _lockout(self):
        if self._pins is None:
            from agent.access.lockout import Lockout
            self._pins = Lockout(self.cfg["pin_attempts"], self.cfg["pin_lockout_s"] * 1000)
        return self._pins

    def _identify(self, door_name, card, pin, fp, now_ms):
        """(record, None) of the one user the credential names, or (record or
        None, denial reason)."""
        store = self.store
        if card is not None:
            found, unknown = store.by_card(card), UNKNOWN_CARD
        elif fp is not None:
            found, unknown = store.by_fp(fp), UNKNOWN_FINGER
        elif pin is not None:
            found, unknown = store.by_pin(pin), UNKNOWN_PIN
        else:
            return None, UNKNOWN_CARD
        if not found:
            if card is None and fp is None:
                self._pins.wrong(door_name, None, now_ms)
            return None, unknown
        if len(found) > 1:
            # Two users share it: a guess could let the wrong one in, and
            # journal the wrong name.
            log.count("access_ambiguous")
            return None, AMBIGUOUS
        rec = found[0]
        if pin is not None and card is not None:
            if not store.pin_matches(rec, pin):
                self._pins.wrong(door_name, card, now_ms)
                return rec, WRONG_PIN
        # A PIN that matches resets no count here: only a grant does
        # (agent/access/lockout.py), or a disabled user's PIN would.
        return rec, None

    # -- outcomes ---------------------------------------------------------
    async def _ask_cloud(self, door_name, source, credential, uid):
        try:
            verdict = await asyncio.wait_for(self.ask_cloud(door_name, source, credential, uid),
                                             self.cfg["cloud_decides_ms"] / 1000)
        except Exception:  # noqa: BLE001 - no answer in time, or none at all: the local decision stands
            log.count("cloud_decisions_missed")
            return None
        return verdict if verdict is True or verdict is False else None

    async def _grant(self, door, source, credential, uid, now_ms):
        try:
            await door.grant(source, user=uid, credential=credential)
        except CommandError:
            # The door refused (its unlock could not be journaled): it stays shut.
            return self._deny(door.name, source, credential, uid, door.refusal() or NOT_JOURNALED)
        window = door.cfg["anti_passback_s"]
        if window and uid is not None:
            if self._passback is None:
                from agent.access.passback import Passback
                self._passback = Passback()
            self._passback.passed(uid, door.name, now_ms, window * 1000)
        log.count("access_granted")
        return True, uid, None

    def _deny(self, door_name, source, credential, uid, reason):
        payload = {r.DOOR: door_name, r.SOURCE: source, r.REASON: reason}
        if credential is not None:
            payload[r.CREDENTIAL] = credential
        if uid is not None:
            payload[r.USER] = uid
        log.count("access_denied")
        if not self.thing.emit(r.ACCESS_DENIED, payload):
            log.count("denials_not_journaled")
        log.info("access", "denied at %s (%s): %s" % (door_name, source, reason))
        return False, uid, reason


def _command(name, access, list_max):
    async def run(payload):
        hal.loading("agent.access.commands")
        from agent.access import commands
        return await commands.run(access, name, list_max, payload)
    return run


PROBE = ".probe"   # no name of the store's (agent/access/users.py)


def open_store(folder, max_users):
    """The UserStore in `folder`, or None (logged, counted) when it cannot
    be opened: a flash that refuses the folder, full at the first start,
    or a repair that failed must not stop the agent - the doors and their
    exit buttons run on, every credential is denied (store_error)."""
    from agent.access.users import UserStore
    try:
        store = UserStore(folder, max_users)
    except OSError as e:
        log.count("users_store_unavailable")
        log.error("access", "the user store in %s cannot be opened (%s): every credential is denied "
                            "(store_error) and user commands refused until it can" % (folder, e))
        return None
    # A store that only reads opens fine: a write tried now tells at start
    # what the first user change would otherwise find out.
    probe = folder + "/" + PROBE
    try:
        with open(probe, "wb") as f:
            f.write(b"doorlink")
            hal.sync_file(f)
    except OSError as e:
        log.count("users_store_unwritable")
        log.warn("access", "the user store in %s cannot be written (%s): decisions go on from what it "
                           "holds, user changes will be refused" % (folder, e))
    try:
        os.remove(probe)
    except OSError:
        pass   # never made
    return store


def make(thing, board, site, doors):
    """The board's Access over its user store: one folder per device id
    under the board's access path, as the journal keeps one per device."""
    cfg = board["access"]
    # By default beside the journal, wherever --journal put it (a dot
    # first: no device id, hence no journal folder, starts with one).
    root = cfg["path"] or board["journal"]["path"].rstrip("/") + "/.users"
    folder = root.rstrip("/") + "/" + site["device_id"]
    access = Access(thing, open_store(folder, cfg["max_users"]), doors, site, cfg, folder)
    if any(p.get("type") == "wiegand" and p.get("mode") != "card" for p in board.get("peripherals", ())):
        # A keypad takes PINs: the lockout table's code is loaded now, on
        # the fresh heap of the start, not by the first PIN typed at the
        # door, when a fragmented heap may hold no block for it (measured:
        # the first card+PIN of the door scenarios failed, allocating 1.3 KB).
        access._lockout()
    return access
