"""What one log line is on its way to Loki: its stream (labels), severity and time.

Loki indexes streams by label set, so labels are few and bounded: ``machine``,
``group``, ``agent``, ``source``. Everything else (level, message, fields) goes
in the line itself as JSON, where ``| json`` in LogQL reads it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: Severity buckets, least severe first; the buffer evicts from the lowest first.
TRACE, DEBUG, INFO, WARNING, ERROR, CRITICAL = range(6)
SEVERITIES = ("trace", "debug", "info", "warning", "error", "critical")

#: Level names accepted from outside (loguru, logging, the hub's /v1/logs) -> bucket.
LEVEL_NAMES: dict[str, int] = {
    "trace": TRACE, "debug": DEBUG, "info": INFO, "success": INFO, "notice": INFO,
    "warning": WARNING, "warn": WARNING, "error": ERROR, "critical": CRITICAL,
    "fatal": CRITICAL,
}

LABEL_NAMES = ("machine", "group", "agent", "source")
_LABEL_VALUE_BAD = re.compile(r"[^A-Za-z0-9_.:-]")
MAX_LABEL_VALUE = 128

#: Bytes a line costs beyond its text (timestamp, JSON framing, bookkeeping): the
#: buffer bounds an estimate, not an exact count, so appends stay O(1).
ENTRY_OVERHEAD_BYTES = 64


def severity_of_number(levelno: int) -> int:
    """loguru and logging share one scale (TRACE 5, DEBUG 10, ... CRITICAL 50)."""
    if levelno < 10:
        return TRACE
    if levelno >= 50:
        return CRITICAL
    return levelno // 10


def clean_label_value(value: str) -> str:
    """A label value safe for Loki and bounded in length (label values are indexed)."""
    return _LABEL_VALUE_BAD.sub("_", value)[:MAX_LABEL_VALUE] or "_"


@dataclass(frozen=True, slots=True)
class StreamLabels:
    """One Loki stream. Hashable, so batches group lines by it cheaply."""

    source: str
    machine: str | None = None
    group: str | None = None
    agent: str | None = None

    def __post_init__(self) -> None:
        for name in LABEL_NAMES:
            v = getattr(self, name)
            if v is not None:
                object.__setattr__(self, name, clean_label_value(str(v)))

    def as_dict(self) -> dict[str, str]:
        return {k: v for k in LABEL_NAMES if (v := getattr(self, k)) is not None}

    @classmethod
    def from_dict(cls, labels: Mapping[str, str]) -> StreamLabels:
        return cls(source=labels.get("source", "unknown"), machine=labels.get("machine"),
                   group=labels.get("group"), agent=labels.get("agent"))


class LogEntry:
    """One line waiting to be shipped. Built on the caller's thread, so it only
    holds references: the JSON line is rendered later by the sender."""

    __slots__ = ("fields", "level", "logger", "message", "severity", "size", "stream", "ts_ns")

    def __init__(self, ts_ns: int, severity: int, level: str, message: str,
                 stream: StreamLabels, fields: Mapping[str, Any] | None = None,
                 logger: str | None = None) -> None:
        self.ts_ns = ts_ns
        self.severity = severity
        self.level = level
        self.message = message
        self.stream = stream
        self.fields = fields  # referenced, not copied: callers hand over a fresh mapping
        self.logger = logger  # the emitting module/logger name, rendered as "logger"
        self.size = len(message) + ENTRY_OVERHEAD_BYTES + (64 * len(fields) if fields else 0)

    def __repr__(self) -> str:
        return f"LogEntry({self.ts_ns}, {self.level}, {self.message!r}, {self.stream})"
