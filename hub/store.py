"""SQLite (WAL) persistence of agent records, written behind the event loop.

Durability bound (docs/hub.md): the hub acknowledges a heartbeat once it is in memory;
changed records are flushed every ``flush_seconds`` (default 1 s) and on shutdown. A
``kill -9`` loses at most the last ``flush_seconds`` of changes; what was flushed
survives the process (WAL with ``synchronous=NORMAL``: a committed transaction is
durable against a process crash; an OS crash may lose the last commits).

Only one thread touches the connection at a time: rows are built on the event loop
(cheap), written by :meth:`Store.write` in a worker thread. A write either commits or
rolls back, whatever it raises (a failed flush never leaves a transaction open); a row
that cannot be stored is skipped (and reported) so it cannot block the others. What
the file must look like, and what happens when it does not, is hub.statefile's.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loguru import logger

from fleetobs.sanitize import clean_json, clean_optional
from hub.registry import Record
from hub.statefile import (
    APPLICATION_ID,
    COLUMNS,
    SCHEMA_VERSION,
    RowError,
    StateFileError,
    check_database,
    decode_row,
    decode_text,
    set_aside,
    wal_problem,
)

_TABLES = """
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
"""
# Built from constants, never from input.
_CREATE = (f"PRAGMA application_id = {APPLICATION_ID};" + _TABLES  # noqa: S608
           + f"INSERT OR IGNORE INTO meta VALUES ('schema_version', '{SCHEMA_VERSION}');")  # noqa: S608

# Built from the constant column list above, never from input.
_UPSERT = (f"INSERT OR REPLACE INTO agents ({', '.join(COLUMNS)}) "  # noqa: S608
           f"VALUES ({', '.join('?' for _ in COLUMNS)})")
_SELECT = f"SELECT {', '.join(COLUMNS)} FROM agents WHERE machine = ?"  # noqa: S608


def _select_rows(conn: sqlite3.Connection, machine: str) -> list[Any]:
    """This machine's rows. Read with sqlite3's own (C) UTF-8 decoding first, ~2x faster
    at 10,000 rows than the replacing ``decode_text``, which reads them again only when
    some text is not UTF-8 (sqlite3 then refuses the whole query)."""
    conn.text_factory = str
    try:
        return conn.execute(_SELECT, (machine,)).fetchall()
    except sqlite3.OperationalError as exc:
        if "decode" not in str(exc):
            raise
    finally:
        conn.text_factory = decode_text
    return conn.execute(_SELECT, (machine,)).fetchall()

Row = tuple[Any, ...]

#: Why a flush failed (the ``reason`` label of fleet_hub_store_flush_failures_total).
REASONS = ("not_open", "io", "damaged", "bad_row", "other")


class StoreError(RuntimeError):
    """A write or open failed; ``reason`` is one of :data:`REASONS`."""

    def __init__(self, message: str, reason: str = "other") -> None:
        super().__init__(message)
        self.reason = reason


@dataclass
class WriteReport:
    written: int = 0
    #: Rows that could not be stored, ``(name, why)``; the others were committed.
    skipped: list[tuple[str, str]] = field(default_factory=list)


def row_of(rec: Record) -> Row:
    """The persisted form of one record (built on the event loop); always storable."""
    t = rec.timing
    details = None
    if rec.details:
        try:
            details = json.dumps(dict(rec.details), separators=(",", ":"), allow_nan=False)
        except (ValueError, TypeError, RecursionError):
            details = json.dumps(clean_json(dict(rec.details)), separators=(",", ":"), allow_nan=False)
    return (rec.name, rec.machine, str(rec.kind), str(t.state), str(t.status),
            str(rec.source) if rec.source is not None else None, t.interval,
            rec.last_seen_wall, rec.state_since_wall, clean_optional(rec.reason),
            clean_optional(rec.version), rec.pid, clean_optional(rec.endpoint),
            clean_optional(rec.container), details)


def _reason_of(exc: BaseException) -> str:
    if isinstance(exc, sqlite3.OperationalError):
        return "io"  # disk full, read-only, locked, I/O error
    if isinstance(exc, sqlite3.InterfaceError | sqlite3.DataError | sqlite3.ProgrammingError
                  | ValueError | TypeError | OverflowError):
        return "bad_row"  # a value SQLite cannot bind
    if isinstance(exc, sqlite3.DatabaseError):
        return "damaged"
    return "other"


class Store:
    """One SQLite database file, ``<data_dir>/hub-<machine>.sqlite3``."""

    def __init__(self, data_dir: Path, machine: str, *, wall: Callable[[], float] = time.time) -> None:
        self.path = data_dir / f"hub-{machine}.sqlite3"
        self.machine = machine
        self._wall = wall
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        #: Where an unusable file (or WAL) was moved by the last open, if anywhere.
        self.set_aside_to: Path | None = None
        #: Rows skipped by the last load, ``(name or '?', why)``.
        self.skipped_rows: list[tuple[str, str]] = []

    @property
    def is_open(self) -> bool:
        return self._conn is not None

    def open(self) -> None:
        """Open (creating it if needed); an unusable file is set aside with a warning.

        Raises :class:`StoreError` only when no usable database can be made at all.
        """
        with self._lock:
            self._open_locked()

    def _open_locked(self) -> None:
        if self._conn is not None:
            return
        self.set_aside_to = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            wal = self.path.with_name(self.path.name + "-wal")
            problem = wal_problem(wal) if wal.exists() else None
            if problem is not None:
                self._set_aside_wal(wal, problem)
            conn = self._connect()
            try:
                fresh = not check_database(conn)
            except StateFileError as exc:
                conn.close()
                self._set_aside(exc.kind, exc.detail)
                conn, fresh = self._connect(), True
            # Only now that the file is known to be ours (or new): journal_mode rewrites
            # the header, and a file set aside is kept exactly as it was found.
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            if fresh:
                conn.executescript(_CREATE)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open the hub state database {self.path}: {exc}", "not_open") from exc
        self._conn = conn

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        conn.text_factory = decode_text
        conn.execute("PRAGMA busy_timeout=2000")  # connection-level: touches no file
        return conn

    def _set_aside(self, kind: str, detail: str) -> None:
        try:
            moved = set_aside(self.path, kind, self._wall)
        except OSError as exc:
            raise StoreError(f"hub state {self.path} is unusable ({detail}) and cannot be moved "
                             f"aside: {exc.strerror or exc}", "not_open") from None
        self.set_aside_to = moved
        what = {"damaged": "damaged", "foreign": "not a fleetobs hub state file",
                "version": "of another schema version"}.get(kind, kind)
        logger.warning("hub state {} is {} ({}); moved it to {} and starting with no saved state",
                       self.path, what, detail, moved.name)

    def _set_aside_wal(self, wal: Path, problem: str) -> None:
        moved = set_aside(wal, "damaged", self._wall)
        shm = self.path.with_name(self.path.name + "-shm")
        with contextlib.suppress(OSError):
            shm.unlink()  # the index of the log just moved: stale now
        self.set_aside_to = moved
        logger.warning("hub state: write-ahead log {} is damaged ({}); moved it to {}: the changes "
                       "since the last checkpoint are lost, the rest is restored", wal, problem, moved.name)

    def load(self) -> list[Mapping[str, Any]]:
        """Every persisted record of this machine that decodes (others: ``skipped_rows``).

        A database that turns out damaged while reading is set aside: nothing is restored.
        """
        self.skipped_rows = []
        with self._lock:
            conn = self._require()
            try:
                rows = _select_rows(conn, self.machine)
            except sqlite3.DatabaseError as exc:
                conn.close()
                self._conn = None
                try:
                    self._set_aside("damaged", str(exc))
                finally:
                    self._open_locked()
                return []
        out: list[Mapping[str, Any]] = []
        for values in rows:
            try:
                out.append(decode_row(values))
            except RowError as exc:
                name = values[0] if values and isinstance(values[0], str) else "?"
                self.skipped_rows.append((name[:128], str(exc)))
        if self.skipped_rows:
            name, why = self.skipped_rows[0]
            logger.warning("hub state {}: skipped {} row(s) that do not decode (first: {!r}: {})",
                           self.path, len(self.skipped_rows), name, why)
        return out

    def write(self, rows: Iterable[Row]) -> WriteReport:
        """Upsert ``rows`` in one transaction (call from a worker thread).

        Commits or rolls back whatever happens. A row SQLite cannot take is skipped and
        reported; any other failure raises :class:`StoreError` with its ``reason``.
        """
        batch = list(rows)
        with self._lock:
            if self._conn is None:
                self._open_locked()  # closed after an error, or never opened: try again
            conn = self._require()
            try:
                self._transaction(conn, batch)
                return WriteReport(len(batch))
            except Exception as exc:
                reason = _reason_of(exc)
                if reason != "bad_row":
                    raise StoreError(f"writing {self.path}: {exc}", reason) from exc
            # One row is bad: store the others one by one, report the bad ones.
            report = WriteReport()
            for row in batch:
                try:
                    self._transaction(conn, [row])
                    report.written += 1
                except Exception as exc:
                    if _reason_of(exc) != "bad_row":
                        raise StoreError(f"writing {self.path}: {exc}", _reason_of(exc)) from exc
                    report.skipped.append((str(row[0])[:128], f"{type(exc).__name__}: {exc}"[:200]))
            return report

    @staticmethod
    def _transaction(conn: sqlite3.Connection, rows: list[Row]) -> None:
        try:
            if conn.in_transaction:  # a ROLLBACK that failed earlier: never stack on it
                conn.execute("ROLLBACK")
            conn.execute("BEGIN")
            conn.executemany(_UPSERT, rows)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            raise

    def recover(self, detail: str) -> None:
        """The database went bad while running: set it aside and start a new one."""
        with self._lock:
            if self._conn is not None:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.close()
                self._conn = None
            self._set_aside("damaged", detail)
            self._open_locked()

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.close()
                self._conn = None

    def _require(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError(f"{self.path} is not open", "not_open")
        return self._conn
