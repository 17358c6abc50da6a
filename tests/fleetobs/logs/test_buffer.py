"""The bounded buffer: limits, least-severe-first eviction, order, counted drops."""

from __future__ import annotations

from fleetobs.logs.buffer import BUFFER_FULL, CLOSED, LINE_TOO_LARGE, LogBuffer
from fleetobs.logs.model import (
    CRITICAL,
    DEBUG,
    ENTRY_OVERHEAD_BYTES,
    ERROR,
    INFO,
    SEVERITIES,
    WARNING,
    LogEntry,
    StreamLabels,
)

S = StreamLabels(source="test", agent="a")


def entry(msg: str, severity: int = INFO, ts: int = 0) -> LogEntry:
    return LogEntry(ts, severity, SEVERITIES[severity], msg, S)


def test_take_returns_lines_in_append_order_across_levels() -> None:
    buf = LogBuffer(1 << 20, 100)
    sevs = [INFO, ERROR, DEBUG, INFO, CRITICAL, WARNING, DEBUG]
    for i, sev in enumerate(sevs):
        assert buf.append(entry(f"m{i}", sev))
    assert [e.message for e in buf.take(1 << 20)] == [f"m{i}" for i in range(len(sevs))]
    assert buf.lines == 0 and buf.bytes == 0


def test_take_stops_at_the_byte_budget_but_always_returns_one_line() -> None:
    buf = LogBuffer(1 << 20, 100)
    for i in range(10):
        buf.append(entry("x" * 100 + str(i)))
    first = buf.take(1)
    assert [e.message[-1] for e in first] == ["0"]
    size = 101 + ENTRY_OVERHEAD_BYTES
    second = buf.take(3 * size)
    assert [e.message[-1] for e in second] == ["1", "2", "3"]
    assert buf.lines == 6


def test_full_by_lines_evicts_the_oldest_least_severe_line() -> None:
    buf = LogBuffer(1 << 20, 3)
    buf.append(entry("debug-old", DEBUG))
    buf.append(entry("error", ERROR))
    buf.append(entry("debug-new", DEBUG))
    assert buf.append(entry("info", INFO))
    assert [e.message for e in buf.take(1 << 20)] == ["error", "debug-new", "info"]
    assert buf.dropped == {BUFFER_FULL: 1}
    assert buf.dropped_by_level == {"debug": 1}


def test_newcomer_less_severe_than_everything_buffered_is_the_one_dropped() -> None:
    buf = LogBuffer(1 << 20, 2)
    buf.append(entry("e1", ERROR))
    buf.append(entry("e2", ERROR))
    assert not buf.append(entry("chatter", INFO))
    assert buf.append(entry("e3", ERROR))  # same severity: the oldest of that level goes
    assert [e.message for e in buf.take(1 << 20)] == ["e2", "e3"]
    assert buf.dropped == {BUFFER_FULL: 2}
    assert buf.dropped_by_level == {"info": 1, "error": 1}


def test_full_by_bytes_evicts_as_many_small_lines_as_a_big_one_needs() -> None:
    size = ENTRY_OVERHEAD_BYTES + 10
    buf = LogBuffer(5 * size, 1000)
    for i in range(5):
        buf.append(entry(f"{i:010d}", DEBUG))
    big = entry("B" * (10 + 2 * size), WARNING)  # three small lines' worth
    assert buf.append(big)
    msgs = [e.message for e in buf.take(1 << 20)]
    assert msgs == ["0000000003", "0000000004", big.message]
    assert buf.dropped[BUFFER_FULL] == 3


def test_bounds_hold_under_a_flood_and_every_drop_is_counted() -> None:
    buf = LogBuffer(50_000, 200)
    n = 10_000
    for i in range(n):
        buf.append(entry(f"line {i}", (DEBUG, INFO, WARNING)[i % 3]))
        assert buf.lines <= 200 and buf.bytes <= 50_000
    kept = buf.take(1 << 30)
    assert len(kept) + sum(buf.dropped.values()) == n
    # Least severe went first: what survived is mostly warnings.
    assert sum(e.severity == WARNING for e in kept) == len(kept)


def test_line_larger_than_the_buffer_is_dropped_with_its_own_reason() -> None:
    buf = LogBuffer(1000, 10)
    assert not buf.append(entry("x" * 2000))
    assert buf.dropped == {LINE_TOO_LARGE: 1} and buf.lines == 0


def test_close_returns_the_rest_and_refuses_more() -> None:
    buf = LogBuffer(1 << 20, 10)
    buf.append(entry("a"))
    buf.append(entry("b", ERROR))
    assert [e.message for e in buf.close()] == ["a", "b"]
    assert not buf.append(entry("late"))
    assert buf.dropped == {CLOSED: 1}


def test_append_never_raises_even_for_a_broken_entry() -> None:
    buf = LogBuffer(1 << 20, 10)
    bad = entry("x")
    bad.severity = 99  # out of range: would be an IndexError inside
    assert buf.append(bad) is False


def test_wake_fires_once_when_the_batch_size_is_reached() -> None:
    calls: list[int] = []
    size = ENTRY_OVERHEAD_BYTES + 1
    buf = LogBuffer(1 << 20, 1000, wake_bytes=3 * size, on_wake=lambda: calls.append(buf.lines))
    for _ in range(6):
        buf.append(entry("x"))
    assert calls == [3]
    buf.take(1 << 20)
    for _ in range(3):
        buf.append(entry("x"))
    assert calls == [3, 3]
