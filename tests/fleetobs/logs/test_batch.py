"""Batches: Loki's JSON push format, timestamps, lines, 413 splits, age filtering."""

from __future__ import annotations

import gzip
import json

import pytest

from fleetobs.logs.batch import Batch, BatchEncoder, render_line
from fleetobs.logs.model import ERROR, INFO, SEVERITIES, LogEntry, StreamLabels

A = StreamLabels(source="agent", machine="mainpc", group="core", agent="A")
B = StreamLabels(source="agent", machine="pc2", agent="B")


def entry(msg: str, ts: int, stream: StreamLabels = A, severity: int = INFO,
          fields: dict[str, object] | None = None) -> LogEntry:
    return LogEntry(ts, severity, SEVERITIES[severity], msg, stream, fields)


def test_body_is_gzip_json_in_lokis_push_shape() -> None:
    batch = BatchEncoder().encode([entry("one", 10), entry("two", 20, B), entry("three", 30)])
    assert batch is not None
    doc = json.loads(gzip.decompress(batch.body))
    assert doc == {"streams": [
        {"stream": {"machine": "mainpc", "group": "core", "agent": "A", "source": "agent"},
         "values": [["10", '{"level":"info","msg":"one"}'], ["30", '{"level":"info","msg":"three"}']]},
        {"stream": {"machine": "pc2", "agent": "B", "source": "agent"},
         "values": [["20", '{"level":"info","msg":"two"}']]},
    ]}
    assert (batch.lines, batch.oldest_ns, batch.newest_ns) == (3, 10, 30)


def test_timestamps_collisions_are_nudged_per_stream_across_batches() -> None:
    enc = BatchEncoder()
    # Same microsecond twice, then a line created 100 ns earlier but queued later.
    b1 = enc.encode([entry("x", 10**9), entry("x", 10**9), entry("late", 10**9 - 100)])
    b2 = enc.encode([entry("y", 10**9 + 1), entry("other stream", 5, B)])
    assert b1 is not None and b2 is not None
    assert [v[0] for v in b1.streams[0]["values"]] == [str(10**9), str(10**9 + 1), str(10**9 + 2)]
    assert [v[0] for v in b2.streams[0]["values"]] == [str(10**9 + 3)]
    assert b2.streams[1]["values"][0][0] == "5"


def test_backfilled_old_timestamps_are_kept() -> None:
    enc = BatchEncoder()
    b = enc.encode([entry("now", 10**12), entry("an hour ago", 10**12 - 3600 * 10**9),
                    entry("next", 10**12 + 5)])
    assert b is not None
    assert [v[0] for v in b.streams[0]["values"]] == [
        str(10**12), str(10**12 - 3600 * 10**9), str(10**12 + 5)]


def test_line_carries_level_message_and_fields_without_clobbering() -> None:
    line = render_line(entry("hi", 1, severity=ERROR, fields={"level": "fake", "n": 3, "obj": object}))
    doc = json.loads(line)
    assert doc["level"] == "error" and doc["msg"] == "hi"
    assert doc["field_level"] == "fake" and doc["n"] == 3
    assert doc["obj"] == str(object)


def test_circular_fields_still_give_a_line() -> None:
    loop: list[object] = []
    loop.append(loop)
    doc = json.loads(render_line(entry("m", 1, fields={"loop": loop})))
    assert doc["msg"] == "m" and doc["loop"] == "[[...]]"


def test_structured_metadata_only_when_enabled() -> None:
    e = entry("m", 1, fields={"trace_id": "abc", "user": "u"})
    plain = BatchEncoder().encode([e])
    meta = BatchEncoder(structured_metadata=True).encode([e])
    assert plain is not None and meta is not None
    assert len(plain.streams[0]["values"][0]) == 2
    assert meta.streams[0]["values"][0][2] == {"level": "info", "trace_id": "abc"}


def test_split_keeps_each_streams_order_and_every_line() -> None:
    entries = [entry(f"{s.agent}{i}", 100 + i, s) for i in range(7) for s in (A, B)]
    batch = BatchEncoder().encode(entries)
    assert batch is not None
    first, second = batch.split()
    assert first.lines + second.lines == batch.lines

    def lines(b: Batch, agent: str) -> list[str]:
        return [json.loads(v[1])["msg"] for s in b.streams if s["stream"]["agent"] == agent
                for v in s["values"]]

    for agent in ("A", "B"):
        assert lines(first, agent) + lines(second, agent) == [f"{agent}{i}" for i in range(7)]


def test_split_of_one_line_is_refused() -> None:
    batch = BatchEncoder().encode([entry("only", 1)])
    assert batch is not None
    with pytest.raises(AssertionError):
        batch.split()


def test_without_older_than_drops_and_counts_only_old_lines() -> None:
    batch = BatchEncoder().encode([entry("old", 10), entry("new", 50), entry("b-old", 20, B)])
    assert batch is not None
    kept, dropped = batch.without_older_than(30)
    assert dropped == 2 and kept is not None
    assert kept.lines == 1 and kept.oldest_ns == 50
    none_left, all_gone = batch.without_older_than(100)
    assert none_left is None and all_gone == 3
    same, zero = batch.without_older_than(5)
    assert same is batch and zero == 0


def test_body_read_back_decodes_lazily_to_the_same_streams() -> None:
    batch = BatchEncoder().encode([entry("a", 1), entry("b", 2, B)])
    assert batch is not None
    again = Batch.from_body(batch.body, batch.lines, batch.oldest_ns, batch.newest_ns)
    assert again.streams == batch.streams
