"""SQLite storage for the bench cloud: devices and admins with their
tokens (hashed: tokens.py), telemetry, events, punches, admin logs,
commands, online state, and the conflicts a human must look at.

A device's control key (the management channel's signing secret) is the
one secret kept as given: the bench must compute HMACs with it, so a hash
would not do. The file and its WAL files are made readable by their owner
only before a key is written into them (README "Security").

One file, WAL mode, autocommit: every row is durable as soon as the call
returns, and a second process (a test, the CLI, `sqlite3` on the command
line) can read while the bench is writing. A batch that must be stored
whole or not at all (a CloudSolution `sendlog`) runs in transaction().

A record is stored once per (device, record id / log id). The same key
again with the same content is a resend (a duplicate, acknowledged again);
with other content it is a conflict: neither copy is dropped or replaced,
the offer is kept in `conflicts` and Conflict is raised, so the protocol
refuses it and the device keeps it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import tokens

SCHEMA = """
CREATE TABLE IF NOT EXISTS devices (
    device_id  TEXT PRIMARY KEY,
    token      TEXT NOT NULL,
    created_at REAL
);
CREATE TABLE IF NOT EXISTS telemetry (
    id          INTEGER PRIMARY KEY,
    device_id   TEXT NOT NULL,
    received_at REAL NOT NULL,
    payload     TEXT NOT NULL,
    record_id   INTEGER,
    device_time REAL
);
CREATE INDEX IF NOT EXISTS telemetry_device ON telemetry(device_id, id);
CREATE TABLE IF NOT EXISTS events (
    id          INTEGER PRIMARY KEY,
    device_id   TEXT NOT NULL,
    received_at REAL NOT NULL,
    event_type  TEXT NOT NULL,
    payload     TEXT NOT NULL,
    record_id   INTEGER,
    device_time REAL
);
CREATE INDEX IF NOT EXISTS events_device ON events(device_id, id);
CREATE TABLE IF NOT EXISTS commands (
    id         INTEGER PRIMARY KEY,
    command_id TEXT,
    device_id  TEXT NOT NULL,
    command    TEXT NOT NULL,
    payload    TEXT NOT NULL,
    sent_at    REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS punches (
    id          INTEGER PRIMARY KEY,
    device_id   TEXT NOT NULL,
    protocol    TEXT NOT NULL,
    log_id      TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    punch_time  TEXT NOT NULL,
    fields      TEXT NOT NULL,
    received_at REAL NOT NULL,
    UNIQUE(device_id, log_id)
);
CREATE TABLE IF NOT EXISTS admin_logs (
    id          INTEGER PRIMARY KEY,
    device_id   TEXT NOT NULL,
    protocol    TEXT NOT NULL,
    log_id      TEXT NOT NULL,
    admin_id    TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    action      TEXT NOT NULL,
    log_time    TEXT NOT NULL,
    fields      TEXT NOT NULL,
    received_at REAL NOT NULL,
    UNIQUE(device_id, log_id)
);
CREATE TABLE IF NOT EXISTS device_status (
    device_id  TEXT PRIMARY KEY,
    online     INTEGER NOT NULL,
    changed_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS admins (
    name       TEXT PRIMARY KEY,
    token      TEXT NOT NULL,
    created_at REAL
);
CREATE TABLE IF NOT EXISTS control_keys (
    device_id  TEXT PRIMARY KEY,
    key        TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS control_status (
    device_id  TEXT PRIMARY KEY,
    online     INTEGER NOT NULL,
    changed_at REAL NOT NULL,
    state      TEXT,
    state_at   REAL
);
CREATE TABLE IF NOT EXISTS users (
    uid        TEXT PRIMARY KEY,
    appid      TEXT NOT NULL,
    token      TEXT NOT NULL,
    created_at REAL
);
CREATE TABLE IF NOT EXISTS bindings (
    uid        TEXT NOT NULL,
    device_id  TEXT NOT NULL,
    bound_at   REAL NOT NULL,
    PRIMARY KEY (uid, device_id)
);
CREATE INDEX IF NOT EXISTS bindings_device ON bindings(device_id);
CREATE TABLE IF NOT EXISTS conflicts (
    id          INTEGER PRIMARY KEY,
    device_id   TEXT NOT NULL,
    kind        TEXT NOT NULL,
    record_key  TEXT NOT NULL,
    stored      TEXT NOT NULL,
    offered     TEXT NOT NULL,
    offered_sha TEXT NOT NULL,
    first_seen  REAL NOT NULL,
    last_seen   REAL NOT NULL,
    times       INTEGER NOT NULL,
    UNIQUE(device_id, kind, record_key, offered_sha)
);
"""

# Record ids are SQLite integers: a larger one cannot be stored.
MAX_RECORD_ID = (1 << 63) - 1
# Admin tokens open every door: no short ones.
MIN_ADMIN_TOKEN = 16
# App users' tokens (the app APIs, host_tools/bench/gizwits.py): no short ones either.
MIN_USER_TOKEN = 16
DEFAULT_APPID = "doorlink"
# Devices one user may be bound to; the ids an app session holds are bounded by it.
MAX_BINDINGS = 1000
# A control key signs requests that can reboot a door or replace its files.
MIN_CONTROL_KEY = 16


@dataclass(frozen=True)
class User:
    """An app user (the Gizwits and developer-center APIs): who, in which
    app, and the devices bound to it."""

    uid: str
    appid: str
    devices: tuple[str, ...]


class StoreError(Exception):
    """The database cannot be opened or is not a bench database."""


class Conflict(Exception):
    """A record whose key is already stored with other content. The offer
    is kept in the conflicts table; nothing was stored or replaced."""

    def __init__(self, device_id: str, kind: str, key: str) -> None:
        super().__init__(f"conflict: {kind} {key} of {device_id} is already stored with other content; "
                         "kept for review, not stored")
        self.device_id, self.kind, self.key = device_id, kind, key


def _dumps(payload: Any) -> str:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


def _same(stored: Any, offered: Any) -> bool:
    """Same content, as JSON sees it (key order and 1 vs 1.0 aside)."""
    return json.loads(_dumps(stored)) == json.loads(_dumps(offered))


class BenchStore:
    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        # The bench writes from its event loop thread only, but tests and
        # tools may read from another thread; the lock keeps that safe,
        # and a transaction holds it throughout (so it is reentrant).
        self._lock = threading.RLock()
        try:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        except (OSError, sqlite3.Error) as e:
            raise StoreError(f"cannot open {self.path}: {e}") from None
        try:
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA busy_timeout=5000")
            self._db.executescript(SCHEMA)
            self._migrate()
        except sqlite3.DatabaseError as e:
            self._db.close()
            raise StoreError(f"{self.path} is not a usable bench database: {e}") from None

    def _migrate(self) -> None:
        # Databases made before record ids existed get the new columns. The
        # unique index makes a resent record (same device, same journal id)
        # a no-op: delivery is at-least-once, storage exactly-once. Rows
        # without a record id (devices that know only the protocol) are never merged: NULLs
        # are distinct in a SQLite unique index.
        for table in ("telemetry", "events"):
            cols = {r["name"] for r in self._query(f"PRAGMA table_info({table})")}
            for col, kind in (("record_id", "INTEGER"), ("device_time", "REAL")):
                if col not in cols:
                    self._exec(f"ALTER TABLE {table} ADD COLUMN {col} {kind}")
            self._exec(f"CREATE UNIQUE INDEX IF NOT EXISTS {table}_record "
                       f"ON {table}(device_id, record_id)")
        # Databases made before tokens were hashed held them as given.
        for table, key in (("devices", "device_id"), ("admins", "name"), ("users", "uid")):
            for row in self._query(f"SELECT {key} AS k, token FROM {table}"):
                if not tokens.is_hashed(row["token"]):
                    self._exec(f"UPDATE {table} SET token = ? WHERE {key} = ?",
                               (tokens.hash_token(row["token"]), row["k"]))

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Everything stored inside is committed together, or nothing is.
        No awaiting inside: another coroutine's writes would join it."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _exec(self, sql: str, args: tuple = ()) -> sqlite3.Cursor:
        with self._lock:
            return self._db.execute(sql, args)

    def _query(self, sql: str, args: tuple = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    # --- devices -------------------------------------------------------

    def add_device(self, device_id: str, token: str, control_key: str | None = None) -> None:
        """Add a device, or give it a new token (stored hashed). A
        `control_key` (stored as given: see the module's docstring) makes
        the bench sign its management requests; None leaves a key set
        before as it is."""
        _check_text(device_id, "device_id")
        _check_text(token, "token")
        if control_key is not None:
            _check_text(control_key, "control key")
            if len(control_key) < MIN_CONTROL_KEY:
                raise ValueError(f"a control key must be at least {MIN_CONTROL_KEY} characters "
                                 f"(it signs requests that can reboot the door), got {len(control_key)}")
        if control_key is not None:
            self._owner_only()
        with self.transaction():
            self._exec(
                "INSERT INTO devices(device_id, token, created_at) VALUES (?, ?, ?) "
                "ON CONFLICT(device_id) DO UPDATE SET token = excluded.token",
                (device_id, tokens.hash_token(token), time.time()),
            )
            if control_key is not None:
                self._exec("INSERT INTO control_keys(device_id, key) VALUES (?, ?) "
                           "ON CONFLICT(device_id) DO UPDATE SET key = excluded.key", (device_id, control_key))

    def _owner_only(self) -> None:
        """The database and its WAL files readable by their owner only,
        BEFORE a key is written: the key lands in the -wal file first, and
        that file kept the mode it was made with (0644 under the usual umask)."""
        if self.path == ":memory:":
            return
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                Path(self.path + suffix).chmod(0o600)

    def control_key(self, device_id: str) -> str | None:
        """The key the bench signs this device's management requests with, or None."""
        rows = self._query("SELECT key FROM control_keys WHERE device_id = ?", (device_id,))
        return rows[0]["key"] if rows else None

    def device_token_hash(self, device_id: str) -> str | None:
        """The stored hash of a device's token; None for an unknown device."""
        rows = self._query("SELECT token FROM devices WHERE device_id = ?", (device_id,))
        return rows[0]["token"] if rows else None

    def check_token(self, device_id: str, token: str) -> bool:
        """Slow (a scrypt hash): the bench calls tokens.verify off its event
        loop instead. An unknown device costs the same as a wrong token."""
        return tokens.verify(self.device_token_hash(device_id), token)

    # --- admins --------------------------------------------------------

    def add_admin(self, name: str, token: str) -> None:
        """Add an admin, or give it a new token (stored hashed)."""
        _check_text(name, "admin name")
        _check_text(token, "token")
        if len(token) < MIN_ADMIN_TOKEN:
            raise ValueError(f"an admin token must be at least {MIN_ADMIN_TOKEN} characters "
                             f"(it unlocks every door), got {len(token)}")
        self._exec(
            "INSERT INTO admins(name, token, created_at) VALUES (?, ?, ?) "
            "ON CONFLICT(name) DO UPDATE SET token = excluded.token",
            (name, tokens.hash_token(token), time.time()),
        )

    def admin_token_hashes(self) -> list[tuple[str, str]]:
        """(name, stored hash) of every admin."""
        return [(r["name"], r["token"]) for r in self._query("SELECT name, token FROM admins ORDER BY name")]

    def admins(self) -> list[str]:
        return [name for name, _ in self.admin_token_hashes()]

    # --- app users and their bindings ---------------------------------

    def add_user(self, token: str, appid: str | None, uid: str, devices: list[str] | tuple[str, ...] = ()) -> User:
        """Add an app user (or give it a new token and app id), bound to
        `devices` (added to its bindings). The token is stored hashed, as
        an admin's is."""
        appid = DEFAULT_APPID if appid is None else appid
        _check_text(uid, "uid")
        _check_text(appid, "appid")
        _check_text(token, "token")
        if len(token) < MIN_USER_TOKEN:
            raise ValueError(f"a user token must be at least {MIN_USER_TOKEN} characters "
                             f"(it opens that user's doors), got {len(token)}")
        for device_id in devices:
            _check_text(device_id, "device id")
        stored = tokens.hash_token(token)   # slow: not inside the transaction
        with self.transaction():
            self._exec("INSERT INTO users(uid, appid, token, created_at) VALUES (?, ?, ?, ?) "
                       "ON CONFLICT(uid) DO UPDATE SET appid = excluded.appid, token = excluded.token",
                       (uid, appid, stored, time.time()))
            for device_id in devices:
                self._bind(uid, device_id)
        return User(uid, appid, tuple(self.devices_of(uid)))

    def user(self, uid: str) -> User | None:
        rows = self._query("SELECT uid, appid FROM users WHERE uid = ?", (uid,))
        if not rows:
            return None
        return User(rows[0]["uid"], rows[0]["appid"], tuple(self.devices_of(uid)))

    def users(self) -> list[User]:
        return [u for u in (self.user(r["uid"]) for r in self._query("SELECT uid FROM users ORDER BY uid"))
                if u is not None]

    def user_token_hash(self, uid: str) -> tuple[str, str] | None:
        """(appid, stored token hash) of a user; None for an unknown one."""
        rows = self._query("SELECT appid, token FROM users WHERE uid = ?", (uid,))
        return (rows[0]["appid"], rows[0]["token"]) if rows else None

    def user_token_hashes(self) -> list[tuple[str, str]]:
        """(uid, stored hash) of every user."""
        return [(r["uid"], r["token"]) for r in self._query("SELECT uid, token FROM users ORDER BY uid")]

    def user_for_token(self, token: str) -> User | None:
        """The user whose token this is. Slow (a scrypt hash per user):
        the bench calls hub.user_for_token instead, off its event loop."""
        found = None
        for uid, stored in self.user_token_hashes() or [("", None)]:
            if tokens.verify(stored, token) and found is None:
                found = uid
        return self.user(found) if found else None

    def _bind(self, uid: str, device_id: str) -> bool:
        count = self._query("SELECT COUNT(*) AS n FROM bindings WHERE uid = ?", (uid,))[0]["n"]
        if count >= MAX_BINDINGS:
            raise ValueError(f"user {uid} is bound to {count} devices already (at most {MAX_BINDINGS})")
        cur = self._exec("INSERT OR IGNORE INTO bindings(uid, device_id, bound_at) VALUES (?, ?, ?)",
                         (uid, device_id, time.time()))
        return bool(cur.rowcount)

    def bind(self, uid: str, device_id: str) -> bool:
        """Bind a device to a user: True if it was not bound before.
        ValueError for an unknown user."""
        _check_text(device_id, "device id")
        if self.user_token_hash(uid) is None:
            raise ValueError(f"no user {str(uid)[:64]!r}: add it first (doorlink bench add-user)")
        with self.transaction():
            return self._bind(uid, device_id)

    def unbind(self, uid: str, device_id: str) -> bool:
        """True if the device was bound to the user."""
        return bool(self._exec("DELETE FROM bindings WHERE uid = ? AND device_id = ?", (uid, device_id)).rowcount)

    def devices_of(self, uid: str) -> list[str]:
        return [r["device_id"] for r in
                self._query("SELECT device_id FROM bindings WHERE uid = ? ORDER BY device_id", (uid,))]

    def users_of(self, device_id: str) -> list[str]:
        return [r["uid"] for r in self._query("SELECT uid FROM bindings WHERE device_id = ? ORDER BY uid",
                                               (device_id,))]

    def known_device(self, device_id: str) -> bool:
        return bool(self._query("SELECT 1 FROM devices WHERE device_id = ?", (device_id,)))

    def devices(self) -> list[dict]:
        rows = self._query(
            "SELECT d.device_id, d.created_at, COALESCE(s.online, 0) AS online, s.changed_at "
            "FROM devices d LEFT JOIN device_status s USING (device_id) ORDER BY d.device_id"
        )
        return [
            {
                "device_id": r["device_id"],
                "created_at": r["created_at"],
                "online": bool(r["online"]),
                "changed_at": r["changed_at"],
            }
            for r in rows
        ]

    def set_status(self, device_id: str, online: bool) -> None:
        self._exec(
            "INSERT INTO device_status(device_id, online, changed_at) VALUES (?, ?, ?) "
            "ON CONFLICT(device_id) DO UPDATE SET online = excluded.online, "
            "changed_at = excluded.changed_at",
            (device_id, 1 if online else 0, time.time()),
        )

    def reset_status(self) -> None:
        """Mark every device offline (a previous run may have died with rows left online)."""
        for table in ("device_status", "control_status"):
            self._exec(f"UPDATE {table} SET online = 0, changed_at = ? WHERE online = 1", (time.time(),))

    # --- the management channel -------------------------------------------

    def set_control_online(self, device_id: str, online: bool) -> None:
        self._exec(
            "INSERT INTO control_status(device_id, online, changed_at) VALUES (?, ?, ?) "
            "ON CONFLICT(device_id) DO UPDATE SET online = excluded.online, changed_at = excluded.changed_at",
            (device_id, 1 if online else 0, time.time()),
        )

    def set_control_state(self, device_id: str, state: Any) -> None:
        """The device's last answer to app/state."""
        now = time.time()
        self._exec(
            "INSERT INTO control_status(device_id, online, changed_at, state, state_at) VALUES (?, 1, ?, ?, ?) "
            "ON CONFLICT(device_id) DO UPDATE SET state = excluded.state, state_at = excluded.state_at",
            (device_id, now, _dumps(state), now),
        )

    def control_status(self, device_id: str) -> dict:
        """Whether the device's management channel is connected, since
        when, and its last app/state (None before its first)."""
        rows = self._query("SELECT online, changed_at, state, state_at FROM control_status WHERE device_id = ?",
                           (device_id,))
        if not rows:
            return {"device_id": device_id, "online": False, "changed_at": None, "state": None, "state_at": None}
        r = rows[0]
        return {"device_id": device_id, "online": bool(r["online"]), "changed_at": r["changed_at"],
                "state": None if r["state"] is None else json.loads(r["state"]), "state_at": r["state_at"]}

    # --- traffic -------------------------------------------------------

    def _conflict(self, device_id: str, kind: str, key: str, stored: dict, offered: dict) -> Conflict:
        """Keep the offer for a human (once per distinct offer, counting
        how often it came) and return the Conflict to raise."""
        text, now = _dumps(offered), time.time()
        self._exec(
            "INSERT INTO conflicts(device_id, kind, record_key, stored, offered, offered_sha, first_seen, "
            "last_seen, times) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1) "
            "ON CONFLICT(device_id, kind, record_key, offered_sha) DO UPDATE SET "
            "last_seen = excluded.last_seen, times = times + 1",
            (device_id, kind, key, _dumps(stored), text, hashlib.sha256(text.encode()).hexdigest(), now, now),
        )
        return Conflict(device_id, kind, key)

    def _add_record(self, table: str, fields: dict, received_at: float | None, record_id: int | None,
                    device_time: float | None) -> float | None:
        # A resent record (same device and record id) hits the unique index
        # and inserts nothing: returns None so the caller does not
        # rebroadcast; other content under that id raises Conflict.
        if record_id is not None and not 0 <= record_id <= MAX_RECORD_ID:
            raise ValueError(f"record id {record_id} is out of range (0 to 2**63-1)")
        received_at = time.time() if received_at is None else received_at
        row = dict(fields, received_at=received_at, record_id=record_id, device_time=device_time)
        content = [k for k in fields if k != "device_id"] + ["device_time"]
        kind = "telemetry" if table == "telemetry" else "event"
        return received_at if self._insert_once(table, kind, row, "record_id", content, "payload") else None

    def _add_log(self, table: str, kind: str, row: dict) -> bool:
        """A punch or admin log, once per (device, log id): True if stored
        now, False for a resend; Conflict for other content."""
        content = [k for k in row if k not in ("device_id", "protocol", "log_id", "received_at")]
        return self._insert_once(table, kind, row, "log_id", content, "fields")

    def _insert_once(self, table: str, kind: str, row: dict, key: str, content: list[str], json_col: str) -> bool:
        """Insert `row` unless (device_id, row[key]) is stored: True if
        inserted, False if the same content is there already (a resend);
        Conflict (kept in the conflicts table) for other content."""
        with self._lock:
            cur = self._exec(
                f"INSERT OR IGNORE INTO {table}({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                tuple(row.values()),
            )
            if cur.rowcount:
                return True
            found = self._query(f"SELECT {', '.join(content)} FROM {table} WHERE device_id = ? AND {key} = ?",
                                (row["device_id"], row[key]))
            if not found:
                raise sqlite3.IntegrityError(f"{table} row for {key} {row[key]} was neither stored nor found")
            old = found[0]
            stored = {k: json.loads(old[k]) if k == json_col else old[k] for k in content}
            offered = {k: json.loads(row[k]) if k == json_col else row[k] for k in content}
            if _same(stored, offered):
                return False
            raise self._conflict(row["device_id"], kind, str(row[key]), stored, offered)

    def add_telemetry(
        self,
        device_id: str,
        payload: Any,
        received_at: float | None = None,
        record_id: int | None = None,
        device_time: float | None = None,
    ) -> float | None:
        """Store a sample; returns received_at, or None for a duplicate record id."""
        fields = {"device_id": device_id, "payload": _dumps(payload)}
        return self._add_record("telemetry", fields, received_at, record_id, device_time)

    def add_event(
        self,
        device_id: str,
        event_type: str,
        payload: Any,
        received_at: float | None = None,
        record_id: int | None = None,
        device_time: float | None = None,
    ) -> float | None:
        """Store an event; returns received_at, or None for a duplicate record id."""
        fields = {"device_id": device_id, "event_type": event_type, "payload": _dumps(payload)}
        return self._add_record("events", fields, received_at, record_id, device_time)

    def add_punch(self, device_id: str, protocol: str, log_id: str, user_id: str, punch_time: str,
                  fields: dict) -> bool:
        """An attendance punch (XML TimeLog_v2, HTTP sendlog record). Returns
        False for a duplicate (same device, same log id, same content):
        already stored. Other content under that log id raises Conflict."""
        return self._add_log("punches", "punch", {
            "device_id": device_id, "protocol": protocol, "log_id": str(log_id), "user_id": str(user_id),
            "punch_time": punch_time, "fields": _dumps(fields), "received_at": time.time()})

    def add_admin_log(self, device_id: str, protocol: str, log_id: str, admin_id: str, user_id: str,
                      action: str, log_time: str, fields: dict) -> bool:
        """An admin action on the terminal (XML AdminLog_v2). False for a
        duplicate; Conflict for other content under the same log id."""
        return self._add_log("admin_logs", "admin_log", {
            "device_id": device_id, "protocol": protocol, "log_id": str(log_id), "admin_id": str(admin_id),
            "user_id": str(user_id), "action": action, "log_time": log_time, "fields": _dumps(fields),
            "received_at": time.time()})

    def punch_rows(self, device_id: str | None = None, last: int | None = None) -> list[dict]:
        return self._rows("punches", "*", json_col="fields", last=last, device_id=device_id)

    def admin_log_rows(self, device_id: str | None = None, last: int | None = None) -> list[dict]:
        return self._rows("admin_logs", "*", json_col="fields", last=last, device_id=device_id)

    def add_command(
        self,
        command_id: str,
        device_id: str,
        command: str,
        payload: Any,
        sent_at: float | None = None,
    ) -> float:
        sent_at = time.time() if sent_at is None else sent_at
        self._exec(
            "INSERT INTO commands(command_id, device_id, command, payload, sent_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (command_id, device_id, command, _dumps(payload), sent_at),
        )
        return sent_at

    def command_name(self, command_id: str, device_id: str) -> str | None:
        """The command most recently sent to `device_id` under `command_id`, if any."""
        rows = self._query("SELECT command FROM commands WHERE command_id = ? AND device_id = ? "
                           "ORDER BY id DESC LIMIT 1", (str(command_id), device_id))
        return rows[0]["command"] if rows else None

    def _rows(self, table: str, columns: str, json_col: str = "payload", last: int | None = None,
              **where: Any) -> list[dict]:
        """Rows of `table` matching the non-None `where` filters, oldest first,
        with the JSON column decoded; only the `last` newest when given."""
        filters = {k: v for k, v in where.items() if v is not None}
        sql = f"SELECT {columns} FROM {table}"
        if filters:
            sql += " WHERE " + " AND ".join(f"{k} = ?" for k in filters)
        params = tuple(filters.values())
        if last is not None:
            sql = f"SELECT * FROM ({sql} ORDER BY id DESC LIMIT ?) ORDER BY id"
            params += (last,)
        else:
            sql += " ORDER BY id"
        rows = []
        for r in self._query(sql, params):
            row = dict(r)
            row[json_col] = json.loads(row[json_col])
            rows.append(row)
        return rows

    def telemetry_rows(self, device_id: str | None = None, last: int | None = None) -> list[dict]:
        return self._rows("telemetry", "id, device_id, received_at, payload, record_id, device_time",
                          last=last, device_id=device_id)

    def event_rows(self, device_id: str | None = None, event_type: str | None = None,
                   last: int | None = None) -> list[dict]:
        return self._rows("events", "id, device_id, received_at, event_type, payload, record_id, device_time",
                          last=last, device_id=device_id, event_type=event_type)

    def command_rows(self, device_id: str | None = None) -> list[dict]:
        return self._rows("commands", "id, command_id, device_id, command, payload, sent_at",
                          device_id=device_id)

    def conflict_rows(self, device_id: str | None = None, last: int | None = None) -> list[dict]:
        """Records refused because their key was stored with other content:
        what is stored, what was offered, when and how often."""
        rows = self._rows("conflicts", "id, device_id, kind, record_key, stored, offered, first_seen, last_seen, "
                          "times", json_col="stored", last=last, device_id=device_id)
        for row in rows:
            row["offered"] = json.loads(row["offered"])
        return rows

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _check_text(value: Any, what: str) -> None:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{what} must be a non-empty string")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{what} is not valid text (a lone surrogate)") from None


def _with_store(db_path: str | Path, change: Callable[[BenchStore], None]) -> None:
    """Open the database (created if it does not exist), change it, close it."""
    store = BenchStore(db_path)
    try:
        change(store)
    finally:
        store.close()


def add_device(db_path: str | Path, device_id: str, token: str, control_key: str | None = None) -> None:
    """Register (or re-key) a device; creates the database if it does not exist."""
    _with_store(db_path, lambda store: store.add_device(device_id, token, control_key))


def add_user(db_path: str | Path, token: str, appid: str | None, uid: str, devices: list[str]) -> None:
    """Add (or re-key) an app user bound to `devices`; creates the database if it does not exist."""
    _with_store(db_path, lambda store: store.add_user(token, appid, uid, devices))


def add_admin(db_path: str | Path, name: str, token: str) -> None:
    """Add (or re-key) an admin; creates the database if it does not exist."""
    _with_store(db_path, lambda store: store.add_admin(name, token))
