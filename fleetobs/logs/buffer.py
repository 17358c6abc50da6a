"""The bounded in-memory buffer between log calls and the sender thread.

The caller's whole cost is one :meth:`LogBuffer.append`: O(1) amortised, a lock
held for a few hundred nanoseconds (never across I/O), never raises. When the
buffer is full it evicts the oldest line of the least severe level that is not
more severe than the newcomer; if every buffered line is more severe, the
newcomer is the one dropped. Drops are counted by reason, never silent.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable

from fleetobs.logs.model import SEVERITIES, LogEntry

# Drop reasons (bounded: they become a metric label).
BUFFER_FULL = "buffer_full"
LINE_TOO_LARGE = "line_too_large"
CLOSED = "closed"


class LogBuffer:
    def __init__(self, max_bytes: int, max_lines: int, *, wake_bytes: int | None = None,
                 on_wake: Callable[[], None] | None = None) -> None:
        if max_bytes <= 0 or max_lines <= 0:
            raise ValueError("buffer bounds must be positive")
        self.max_bytes = max_bytes
        self.max_lines = max_lines
        # One deque per severity: eviction takes the head of the lowest non-empty one.
        self._levels: list[deque[tuple[int, LogEntry]]] = [deque() for _ in SEVERITIES]
        self._lock = threading.Lock()
        self._bytes = 0
        self._lines = 0
        self._seq = 0
        self._closed = False
        self._wake_bytes = wake_bytes if wake_bytes is not None else max_bytes // 2
        self._on_wake = on_wake
        self._woken = False
        self.dropped: dict[str, int] = {}
        self.dropped_by_level: dict[str, int] = {}

    # --- caller side ---------------------------------------------------------------
    def append(self, entry: LogEntry) -> bool:
        """Queue ``entry``; False when it was dropped (counted). Never raises."""
        try:
            wake = False
            with self._lock:
                if self._closed:
                    self._count(CLOSED, entry)
                    return False
                if entry.size > self.max_bytes:
                    self._count(LINE_TOO_LARGE, entry)
                    return False
                full = self._lines >= self.max_lines or self._bytes + entry.size > self.max_bytes
                if full and not self._make_room(entry):
                    self._count(BUFFER_FULL, entry)
                    return False
                self._levels[entry.severity].append((self._seq, entry))
                self._seq += 1
                self._lines += 1
                self._bytes += entry.size
                if self._bytes >= self._wake_bytes and not self._woken:
                    self._woken = wake = True
            if wake and self._on_wake is not None:
                self._on_wake()
            return True
        except Exception:  # noqa: BLE001 - a log call must never raise into its caller
            return False

    def _make_room(self, entry: LogEntry) -> bool:
        while self._lines >= self.max_lines or self._bytes + entry.size > self.max_bytes:
            victim_level = next((i for i in range(entry.severity + 1) if self._levels[i]), None)
            if victim_level is None:
                return False
            _, victim = self._levels[victim_level].popleft()
            self._lines -= 1
            self._bytes -= victim.size
            self._count(BUFFER_FULL, victim)
        return True

    def _count(self, reason: str, entry: LogEntry) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + 1
        level = SEVERITIES[entry.severity]
        self.dropped_by_level[level] = self.dropped_by_level.get(level, 0) + 1

    # --- sender side ---------------------------------------------------------------
    def take(self, max_bytes: int) -> list[LogEntry]:
        """The oldest lines (in append order) up to ``max_bytes`` (at least one line)."""
        out: list[LogEntry] = []
        with self._lock:
            taken = 0
            levels = [q for q in self._levels if q]
            while levels and (taken < max_bytes or not out):
                q = levels[0] if len(levels) == 1 else min(levels, key=lambda d: d[0][0])
                _, entry = q.popleft()
                out.append(entry)
                taken += entry.size
                if not q:
                    levels.remove(q)
            self._lines -= len(out)
            self._bytes -= taken
            if self._bytes < self._wake_bytes:
                self._woken = False
        return out

    def close(self) -> list[LogEntry]:
        """Refuse further appends; return what was still queued, oldest first."""
        with self._lock:
            self._closed = True
        return self.take(1 << 62)

    @property
    def lines(self) -> int:
        return self._lines

    @property
    def bytes(self) -> int:
        return self._bytes
