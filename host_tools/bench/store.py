"""SQLite storage for the bench cloud: devices and their tokens, telemetry,
events, punches, admin logs, commands and online state.

One file, WAL mode, autocommit: every row is durable as soon as the call
returns, and a second process (a test, the CLI, `sqlite3` on the command
line) can read while the bench is writing.
"""

from __future__ import annotations

import hmac
import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

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
"""

# Compared against when the device is unknown, so a probe for device ids
# costs the same as a wrong token.
_DUMMY_TOKEN = b"\x00" * 32


def _dumps(payload: Any) -> str:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


class BenchStore:
    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        # The bench writes from its event loop thread only, but tests and
        # tools may read from another thread; the lock keeps that safe.
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(SCHEMA)
        self._migrate()

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

    def _exec(self, sql: str, args: tuple = ()) -> sqlite3.Cursor:
        with self._lock:
            return self._db.execute(sql, args)

    def _query(self, sql: str, args: tuple = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    # --- devices -------------------------------------------------------

    def add_device(self, device_id: str, token: str) -> None:
        if not isinstance(device_id, str) or not device_id:
            raise ValueError("device_id must be a non-empty string")
        if not isinstance(token, str) or not token:
            raise ValueError("token must be a non-empty string")
        self._exec(
            "INSERT INTO devices(device_id, token, created_at) VALUES (?, ?, ?) "
            "ON CONFLICT(device_id) DO UPDATE SET token = excluded.token",
            (device_id, token, time.time()),
        )

    def check_token(self, device_id: str, token: str) -> bool:
        rows = self._query("SELECT token FROM devices WHERE device_id = ?", (device_id,))
        expected = rows[0]["token"].encode("utf-8") if rows else _DUMMY_TOKEN
        # compare_digest rejects non-ASCII str, so compare bytes.
        ok = hmac.compare_digest(expected, str(token).encode("utf-8"))
        return bool(rows) and ok

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
        self._exec("UPDATE device_status SET online = 0, changed_at = ? WHERE online = 1", (time.time(),))

    # --- traffic -------------------------------------------------------

    def _add_record(self, table: str, fields: dict, received_at: float | None, record_id: int | None,
                    device_time: float | None) -> float | None:
        # A resent record (same device and record id) hits the unique index
        # and inserts nothing: returns None so the caller does not rebroadcast.
        received_at = time.time() if received_at is None else received_at
        row = dict(fields, received_at=received_at, record_id=record_id, device_time=device_time)
        cur = self._exec(
            f"INSERT OR IGNORE INTO {table}({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
            tuple(row.values()),
        )
        return received_at if cur.rowcount else None

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
        False for a duplicate (same device, same log id): already stored."""
        cur = self._exec(
            "INSERT OR IGNORE INTO punches(device_id, protocol, log_id, user_id, punch_time, fields, received_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (device_id, protocol, str(log_id), str(user_id), punch_time, _dumps(fields), time.time()),
        )
        return bool(cur.rowcount)

    def add_admin_log(self, device_id: str, protocol: str, log_id: str, admin_id: str, user_id: str,
                      action: str, log_time: str, fields: dict) -> bool:
        """An admin action on the terminal (XML AdminLog_v2). False for a duplicate."""
        cur = self._exec(
            "INSERT OR IGNORE INTO admin_logs(device_id, protocol, log_id, admin_id, user_id, action, log_time, "
            "fields, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (device_id, protocol, str(log_id), str(admin_id), str(user_id), action, log_time, _dumps(fields),
             time.time()),
        )
        return bool(cur.rowcount)

    def punch_rows(self, device_id: str | None = None) -> list[dict]:
        return self._rows("punches", "*", json_col="fields", device_id=device_id)

    def admin_log_rows(self, device_id: str | None = None) -> list[dict]:
        return self._rows("admin_logs", "*", json_col="fields", device_id=device_id)

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

    def command_name(self, command_id: str) -> str | None:
        """The command most recently sent under `command_id`, if any."""
        rows = self._query("SELECT command FROM commands WHERE command_id = ? ORDER BY id DESC LIMIT 1",
                           (str(command_id),))
        return rows[0]["command"] if rows else None

    def _rows(self, table: str, columns: str, json_col: str = "payload", **where: Any) -> list[dict]:
        """Rows of `table` matching the non-None `where` filters, oldest first,
        with the JSON column decoded."""
        filters = {k: v for k, v in where.items() if v is not None}
        sql = f"SELECT {columns} FROM {table}"
        if filters:
            sql += " WHERE " + " AND ".join(f"{k} = ?" for k in filters)
        rows = []
        for r in self._query(sql + " ORDER BY id", tuple(filters.values())):
            row = dict(r)
            row[json_col] = json.loads(row[json_col])
            rows.append(row)
        return rows

    def telemetry_rows(self, device_id: str | None = None) -> list[dict]:
        return self._rows("telemetry", "id, device_id, received_at, payload, record_id, device_time",
                          device_id=device_id)

    def event_rows(self, device_id: str | None = None, event_type: str | None = None) -> list[dict]:
        return self._rows("events", "id, device_id, received_at, event_type, payload, record_id, device_time",
                          device_id=device_id, event_type=event_type)

    def command_rows(self, device_id: str | None = None) -> list[dict]:
        return self._rows("commands", "id, command_id, device_id, command, payload, sent_at",
                          device_id=device_id)

    def close(self) -> None:
        with self._lock:
            self._db.close()


def add_device(db_path: str | Path, device_id: str, token: str) -> None:
    """Register (or re-key) a device; creates the database if it does not exist."""
    store = BenchStore(db_path)
    try:
        store.add_device(device_id, token)
    finally:
        store.close()
