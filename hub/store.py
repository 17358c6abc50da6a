"""SQLite (WAL) persistence of agent records, written behind the event loop.

Durability bound (docs/hub.md): the hub acknowledges a heartbeat once it is in memory;
changed records are flushed every ``flush_seconds`` (default 1 s) and on shutdown. A
``kill -9`` loses at most the last ``flush_seconds`` of changes; what was flushed
survives the process (WAL with ``synchronous=NORMAL``: a committed transaction is
durable against a process crash; an OS crash may lose the last commits).

Only one thread touches the connection at a time: rows are built on the event loop
(cheap), written by :meth:`Store.write` in a worker thread.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from hub.registry import Record

SCHEMA_VERSION = 1

_COLUMNS = ("name", "machine", "kind", "state", "status", "source", "interval_seconds",
            "last_seen_wall", "state_since_wall", "reason", "version", "pid", "endpoint",
            "container", "details")

_CREATE = """
CREATE TABLE IF NOT EXISTS agents (
    name TEXT NOT NULL,
    machine TEXT NOT NULL,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    status TEXT NOT NULL,
    source TEXT,
    interval_seconds REAL NOT NULL,
    last_seen_wall REAL,
    state_since_wall REAL,
    reason TEXT,
    version TEXT,
    pid INTEGER,
    endpoint TEXT,
    container TEXT,
    details TEXT,
    PRIMARY KEY (machine, name)
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT OR IGNORE INTO meta VALUES ('schema_version', '1');
"""

# Built from the constant column list above, never from input.
_UPSERT = (f"INSERT OR REPLACE INTO agents ({', '.join(_COLUMNS)}) "  # noqa: S608
           f"VALUES ({', '.join('?' for _ in _COLUMNS)})")
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM agents WHERE machine = ?"  # noqa: S608

Row = tuple[Any, ...]


class StoreError(RuntimeError):
    pass


def row_of(rec: Record) -> Row:
    """The persisted form of one record (built on the event loop)."""
    t = rec.timing
    return (rec.name, rec.machine, str(rec.kind), str(t.state), str(t.status),
            str(rec.source) if rec.source is not None else None, t.interval,
            rec.last_seen_wall, rec.state_since_wall, rec.reason, rec.version, rec.pid,
            rec.endpoint, rec.container,
            json.dumps(dict(rec.details), separators=(",", ":")) if rec.details else None)


class Store:
    """One SQLite database file, ``<data_dir>/hub-<machine>.sqlite3``."""

    def __init__(self, data_dir: Path, machine: str) -> None:
        self.path = data_dir / f"hub-{machine}.sqlite3"
        self.machine = machine
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    def open(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=2000")
            conn.executescript(_CREATE)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open the hub state database {self.path}: {exc}") from exc
        self._conn = conn

    def load(self) -> list[Mapping[str, Any]]:
        """Every persisted record of this machine."""
        with self._lock:
            conn = self._require()
            cur = conn.execute(_SELECT, (self.machine,))
            rows = cur.fetchall()
        out: list[Mapping[str, Any]] = []
        for values in rows:
            row = dict(zip(_COLUMNS, values, strict=True))
            try:
                row["details"] = json.loads(row["details"]) if row["details"] else {}
            except ValueError:
                row["details"] = {}
            out.append(row)
        return out

    def write(self, rows: Iterable[Row]) -> None:
        """Upsert ``rows`` in one transaction (call from a worker thread)."""
        with self._lock:
            conn = self._require()
            try:
                conn.execute("BEGIN")
                conn.executemany(_UPSERT, rows)
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise StoreError(f"writing {self.path}: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _require(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError(f"{self.path} is not open")
        return self._conn
