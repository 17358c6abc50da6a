"""Batches in Loki's JSON push format, gzip-compressed.

Loki's push API (``POST /loki/api/v1/push``) takes
``{"streams": [{"stream": {labels}, "values": [["<unix ns>", "<line>", {metadata}?]]}]}``
with ``Content-Encoding: gzip``. A :class:`Batch` keeps both the JSON-ready streams
(to split on 413 or filter by age) and the compressed body (sent and spooled as is).
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from fleetobs.logs.model import LogEntry, StreamLabels

#: Keys of the JSON line that fields may not overwrite (renamed ``field_<key>``).
RESERVED = frozenset({"level", "msg", "logger"})
#: Fields that go to structured metadata when it is enabled (high cardinality, not labels).
METADATA_FIELDS = ("trace_id", "span_id")

Value = list[Any]  # [ts_ns_str, line] or [ts_ns_str, line, {metadata}]


@dataclass
class Batch:
    _streams: list[dict[str, Any]] | None  # [{"stream": {...}, "values": [...]}], send order
    lines: int
    oldest_ns: int
    newest_ns: int
    _body: bytes | None = field(default=None, repr=False)

    @property
    def streams(self) -> list[dict[str, Any]]:
        """The JSON-ready streams (decoded from the body when read back from the spool)."""
        if self._streams is None:
            assert self._body is not None
            self._streams = json.loads(gzip.decompress(self._body))["streams"]
        return self._streams

    @property
    def body(self) -> bytes:
        """The gzip-compressed JSON push body (built once)."""
        if self._body is None:
            raw = json.dumps({"streams": self.streams}, separators=(",", ":"),
                             ensure_ascii=False).encode()
            self._body = gzip.compress(raw, compresslevel=1, mtime=0)
        return self._body

    @classmethod
    def from_values(cls, pairs: Iterable[tuple[dict[str, str], Value]]) -> Batch | None:
        """Regroup (labels, value) pairs by stream, keeping their order."""
        by_stream: dict[tuple[tuple[str, str], ...], dict[str, Any]] = {}
        n, oldest, newest = 0, 1 << 63, 0
        for labels, value in pairs:
            key = tuple(sorted(labels.items()))
            s = by_stream.get(key)
            if s is None:
                s = by_stream[key] = {"stream": labels, "values": []}
            s["values"].append(value)
            ts = int(value[0])
            oldest, newest = min(oldest, ts), max(newest, ts)
            n += 1
        return cls(list(by_stream.values()), n, oldest, newest) if n else None

    @classmethod
    def from_body(cls, body: bytes, lines: int, oldest_ns: int, newest_ns: int) -> Batch:
        """A batch read back from the spool: decoded only if it must be split or filtered."""
        return cls(None, lines, oldest_ns, newest_ns, body)

    def split(self) -> tuple[Batch, Batch]:
        """Two halves, each stream's lines still in order (the first half is older)."""
        pairs = list(_pairs(self.streams))
        half = len(pairs) // 2
        first, second = Batch.from_values(pairs[:half]), Batch.from_values(pairs[half:])
        assert first is not None and second is not None, "split needs two lines or more"
        return first, second

    def without_older_than(self, cutoff_ns: int) -> tuple[Batch | None, int]:
        """This batch minus lines Loki would reject as too old; and how many went."""
        if self.oldest_ns >= cutoff_ns:
            return self, 0
        kept = [(lab, v) for lab, v in _pairs(self.streams) if int(v[0]) >= cutoff_ns]
        return Batch.from_values(kept), self.lines - len(kept)


def _pairs(streams: Sequence[dict[str, Any]]) -> Iterable[tuple[dict[str, str], Value]]:
    for s in streams:
        for v in s["values"]:
            yield s["stream"], v


_encode_str = json.encoder.encode_basestring  # the C escaper behind json.dumps(str)
_ENCODER = json.JSONEncoder(default=str, ensure_ascii=False, separators=(",", ":"))


def _value(v: Any) -> str:
    if isinstance(v, str):
        return _encode_str(v)
    if v is True:
        return "true"
    if v is False:
        return "false"
    if v is None:
        return "null"
    if type(v) is int:
        return str(v)
    return _ENCODER.encode(v)


def render_line(entry: LogEntry) -> str:
    """The JSON line: level and message first, then the caller's fields.

    Built by hand from json's own C string escaper: this runs once per line on the
    sender thread, and a json.dumps per line was half the sender's time.
    """
    parts = ['{"level":"', entry.level, '","msg":', _encode_str(entry.message)]
    if entry.logger is not None:
        parts += [',"logger":', _encode_str(entry.logger)]
    fixed = len(parts)
    if entry.fields:
        try:
            for k, v in entry.fields.items():
                key = f"field_{k}" if k in RESERVED else str(k)
                parts += [",", _encode_str(key), ":", _value(v)]
        except (TypeError, ValueError):  # e.g. a circular structure in a field
            parts = parts[:fixed]
            for k, v in entry.fields.items():
                key = f"field_{k}" if k in RESERVED else str(k)
                parts += [",", _encode_str(key), ":", _encode_str(v if isinstance(v, str) else repr(v))]
    parts.append("}")
    return "".join(parts)


#: A line stamped at most this much before its stream's newest is re-stamped just after it.
NUDGE_WINDOW_NS = 1_000_000


class BatchEncoder:
    """Entries -> :class:`Batch`. Loki drops a line whose stream, timestamp *and* text
    equal an earlier one's, so two identical lines in the same microsecond (loguru's
    resolution) would vanish silently; and threads sharing a stream can queue lines a
    hair out of creation order. So a line stamped within 1 ms before (or at) its
    stream's newest timestamp is moved to newest + 1 ns. Older stamps (an agent's
    backfill sent to the hub) are kept as they are: Loki >= 2.4 accepts those."""

    def __init__(self, *, structured_metadata: bool = False) -> None:
        self.structured_metadata = structured_metadata
        self._last_ts: dict[StreamLabels, int] = {}
        self._labels: dict[StreamLabels, dict[str, str]] = {}

    def encode(self, entries: Sequence[LogEntry]) -> Batch | None:
        groups: dict[StreamLabels, list[Value]] = {}
        last_ts = self._last_ts
        meta_on = self.structured_metadata
        oldest, newest = 1 << 63, 0
        for e in entries:
            ts = e.ts_ns
            stream = e.stream
            prev = last_ts.get(stream)
            if prev is not None and prev - NUDGE_WINDOW_NS < ts <= prev:
                ts = prev + 1
            if prev is None or ts > prev:
                last_ts[stream] = ts
            oldest, newest = min(oldest, ts), max(newest, ts)
            value: Value = [str(ts), render_line(e)]
            if meta_on:
                meta = {"level": e.level}
                if e.fields:
                    meta.update({k: str(e.fields[k]) for k in METADATA_FIELDS if k in e.fields})
                value.append(meta)
            values = groups.get(stream)
            if values is None:
                values = groups[stream] = []
            values.append(value)
        if not groups:
            return None
        streams = [{"stream": self._labels_of(s), "values": v} for s, v in groups.items()]
        return Batch(streams, len(entries), oldest, newest)

    def _labels_of(self, stream: StreamLabels) -> dict[str, str]:
        labels = self._labels.get(stream)
        if labels is None:
            labels = self._labels[stream] = stream.as_dict()
        return labels
