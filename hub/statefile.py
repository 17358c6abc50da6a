"""The hub's state file on disk: is it ours, whole and of our schema; what a row may hold.

The state is a cache of what the hub last heard (agents re-announce themselves within
an interval), so a file the hub cannot use is never a reason to stay down: a damaged,
foreign or other-version database is *set aside* (renamed next to itself with the
reason and the time, kept for forensics) and the hub starts empty, saying so in one
warning line. Only a data dir where nothing can be created or renamed is fatal.

Checked on open, before any row is read:

* the write-ahead log (``-wal``): SQLite silently ignores a WAL whose header or first
  frame does not check out, which loses every change since the last checkpoint; its
  header and first frame are verified here so that loss is at least reported;
* the database: an SQLite file (``file is not a database`` otherwise), whole
  (``PRAGMA quick_check``), with our ``application_id`` (or none: files of the first
  release), our tables and columns, and ``meta.schema_version`` equal to
  :data:`SCHEMA_VERSION`;
* each row (:func:`decode_row`): a row that does not decode is skipped with a warning.
"""

from __future__ import annotations

import json
import math
import sqlite3
import struct
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from fleetobs.sanitize import clean_json, clean_text
from fleetobs.topology.model import NAME_RE

SCHEMA_VERSION = 1
#: ``PRAGMA application_id`` of a fleetobs hub state file ("FLOB").
APPLICATION_ID = 0x464C4F42

COLUMNS = ("name", "machine", "kind", "state", "status", "source", "interval_seconds",
           "last_seen_wall", "state_since_wall", "reason", "version", "pid", "endpoint",
           "container", "details")
TABLES = frozenset({"agents", "meta"})

_STATES = frozenset({"missing", "up", "degraded", "suspect", "down", "unmonitored"})
_STATUSES = frozenset({"ok", "degraded", "error"})
#: Text columns and the longest value the API accepts for each (longer ones are cut).
_TEXT_LIMITS = {"reason": 256, "version": 128, "endpoint": 512, "source": 32, "kind": 32}
_WAL_MAGIC = (0x377F0682, 0x377F0683)
_WAL_VERSION = 3007000


class StateFileError(Exception):
    """The file cannot be used as it is. ``kind``: damaged, foreign or version."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


class RowError(ValueError):
    pass


# --- the write-ahead log ---------------------------------------------------------------
def _wal_checksum(data: bytes, big_endian: bool, s0: int = 0, s1: int = 0) -> tuple[int, int]:
    """SQLite's WAL checksum over ``data`` (a multiple of 8 bytes)."""
    words = struct.unpack(f"{'>' if big_endian else '<'}{len(data) // 4}I", data)
    mask = 0xFFFFFFFF
    for i in range(0, len(words), 2):
        s0 = (s0 + words[i] + s1) & mask
        s1 = (s1 + words[i + 1] + s0) & mask
    return s0, s1


def wal_problem(wal: Path) -> str | None:
    """Why SQLite would ignore the changes in ``wal``; ``None`` when it is usable or absent.

    Checks the 32-byte header and the first frame (if either is bad, every change in the
    log is dropped). A torn last frame after a crash is normal and not reported.
    """
    try:
        with wal.open("rb") as f:
            header = f.read(32)
            if not header:
                return None  # empty: nothing to replay
            if len(header) < 32:
                return f"{len(header)} bytes, shorter than a WAL header"
            magic, version, page_size, _seq, salt1, salt2, c0, c1 = struct.unpack(">8I", header)
            if magic not in _WAL_MAGIC or version != _WAL_VERSION:
                return "not a write-ahead log (bad magic number)"
            big = magic & 1 == 1
            if _wal_checksum(header[:24], big) != (c0, c1):
                return "header checksum mismatch"
            frame = f.read(24 + page_size)
    except OSError as exc:
        return f"cannot read it: {exc.strerror or exc}"
    if not frame:
        return None  # a header alone: nothing to replay
    if len(frame) < 24 + page_size:
        return None  # a torn first frame: what a crash mid-write leaves
    f_salt1, f_salt2, f0, f1 = struct.unpack(">4I", frame[8:24])
    if (f_salt1, f_salt2) != (salt1, salt2):
        return None  # a frame of an older generation: SQLite ignores it by design
    if _wal_checksum(frame[:8] + frame[24:], big, c0, c1) != (f0, f1):
        return "first frame checksum mismatch"
    return None


# --- the database ---------------------------------------------------------------------
def check_database(conn: sqlite3.Connection) -> bool:
    """Raise :class:`StateFileError` unless ``conn`` is a usable state database of ours.

    Returns ``False`` for an empty database (no tables yet: the caller creates them).
    """
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        check = conn.execute("PRAGMA quick_check(1)").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise StateFileError("damaged", str(exc)) from None
    if check != "ok":
        raise StateFileError("damaged", f"integrity check: {clean_text(str(check))[:200]}")
    if app_id not in (0, APPLICATION_ID):
        raise StateFileError("foreign", f"application_id {app_id:#x} is not a fleetobs hub's")
    if not tables:
        return False
    if not tables >= TABLES:
        missing = ", ".join(sorted(TABLES - tables))
        raise StateFileError("foreign", f"no {missing} table (tables: {', '.join(sorted(tables))[:200]})")
    try:
        found = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        columns = {r[1] for r in conn.execute("PRAGMA table_info(agents)")}
    except sqlite3.DatabaseError as exc:
        raise StateFileError("foreign", str(exc)) from None
    try:
        version = int(found[0]) if found is not None else None
    except (TypeError, ValueError):
        version = None
    if version is None:
        raise StateFileError("foreign", "no readable schema_version in its meta table")
    if version != SCHEMA_VERSION:
        newer = "a newer" if version > SCHEMA_VERSION else "an older"
        raise StateFileError("version", f"schema version {version}, written by {newer} fleetobs "
                                      f"(this one reads version {SCHEMA_VERSION})")
    if columns != set(COLUMNS):
        raise StateFileError("foreign", f"the agents table has columns {', '.join(sorted(columns))[:300]}")
    return True


def set_aside(path: Path, kind: str, wall: Callable[[], float] = time.time) -> Path:
    """Rename ``path`` (and its -wal/-shm) to ``<name>.<kind>-<UTC time>``; returns the new path."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(wall()))
    target = path.with_name(f"{path.name}.{kind}-{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.{kind}-{stamp}-{n}")
    for suffix in ("-wal", "-shm"):
        side = path.with_name(path.name + suffix)
        if side.exists():
            side.replace(target.with_name(target.name + suffix))
    if path.exists():
        path.replace(target)
    return target


# --- rows -----------------------------------------------------------------------------
def _number(row: Mapping[str, Any], key: str, *, optional: bool) -> float | None:
    # sqlite3 gives exactly int, float, str, bytes or None: exact type checks suffice.
    v = row[key]
    kind = type(v)
    if kind is float:
        if math.isfinite(v):
            return v  # type: ignore[no-any-return]
    elif kind is int:
        return float(v)
    elif v is None and optional:
        return None
    raise RowError(f"{key}={_show(v)} is not a number")


def _show(v: Any) -> str:
    return clean_text(repr(v))[:60]


def decode_row(values: Sequence[Any]) -> dict[str, Any]:
    """One persisted row (``COLUMNS`` order) as a clean mapping, or :class:`RowError` saying why.

    The name, state, status and times must be right (else the row is useless); text is
    cleaned and cut to the API's limits, a bad pid, container or details is dropped.
    """
    if len(values) != len(COLUMNS):
        raise RowError(f"{len(values)} columns, expected {len(COLUMNS)}")
    row = dict(zip(COLUMNS, values, strict=True))
    name = row["name"]
    if not isinstance(name, str) or NAME_RE.fullmatch(name) is None:
        raise RowError(f"name={_show(name)} is not an agent name")
    if row["state"] not in _STATES:
        raise RowError(f"state={_show(row['state'])} is not a state")
    if row["status"] not in _STATUSES:
        raise RowError(f"status={_show(row['status'])} is not a status")
    interval = _number(row, "interval_seconds", optional=False)
    if interval is None or interval <= 0:
        raise RowError(f"interval_seconds={_show(row['interval_seconds'])} is not positive")
    row["interval_seconds"] = interval
    row["last_seen_wall"] = _number(row, "last_seen_wall", optional=True)
    try:
        row["state_since_wall"] = _number(row, "state_since_wall", optional=True)
    except RowError:
        row["state_since_wall"] = None
    for key, limit in _TEXT_LIMITS.items():
        v = row[key]
        if v is not None:
            row[key] = clean_text(v)[:limit] if type(v) is str else None
    container = row["container"]
    if container is not None and (type(container) is not str or NAME_RE.fullmatch(container) is None):
        row["container"] = None
    pid = row["pid"]
    if pid is not None:
        row["pid"] = pid if type(pid) is int and 1 <= pid < 2**31 else None
    details = row["details"]
    row["details"] = _details(details) if details else {}
    return row


def _details(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, str) or not raw:
        return {}
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        return {}
    cleaned = clean_json(value)
    return cleaned if isinstance(cleaned, dict) else {}


def decode_text(raw: bytes) -> str:
    """SQLite text as ``str`` whatever its bytes (``sqlite3`` raises on invalid UTF-8)."""
    return raw.decode("utf-8", "replace")


__all__ = ["APPLICATION_ID", "COLUMNS", "SCHEMA_VERSION", "RowError", "StateFileError",
           "check_database", "decode_row", "decode_text", "set_aside", "wal_problem"]
