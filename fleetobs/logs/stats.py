"""The shipper's own counters, and the Prometheus collector that exports them."""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from prometheus_client.core import HistogramMetricFamily
from prometheus_client.registry import Collector

from fleetobs import catalog

# Drop reasons besides the buffer's own (fleetobs.logs.buffer): bounded, a metric label.
REJECTED = "rejected"  # Loki answered 400 / another 4xx: not retried
TOO_LARGE = "too_large"  # a single line Loki still refused with 413
TOO_OLD = "too_old"  # older than Loki accepts (reject_old_samples_max_age)
SPOOL_FULL = "spool_full"  # evicted from a full spool / memory outbox
SPOOL_CORRUPT = "spool_corrupt"  # a spool file that could not be read back
SHUTDOWN = "shutdown"  # still unsent when the shutdown deadline passed

BUCKETS = catalog.LATENCY_BUCKETS


@dataclass
class ShipperStats:
    """Written by the sender thread; read by collectors and tests (snapshots under a lock)."""

    lines_sent: int = 0
    batches_sent: int = 0
    bytes_sent: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    retries: dict[str, int] = field(default_factory=dict)
    push_counts: dict[str, list[int]] = field(default_factory=dict)  # outcome -> bucket counts
    push_sums: dict[str, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def drop(self, reason: str, lines: int) -> None:
        if lines > 0:
            with self._lock:
                self.dropped[reason] = self.dropped.get(reason, 0) + lines

    def sent(self, lines: int, nbytes: int) -> None:
        with self._lock:
            self.lines_sent += lines
            self.batches_sent += 1
            self.bytes_sent += nbytes

    def retry(self, reason: str) -> None:
        with self._lock:
            self.retries[reason] = self.retries.get(reason, 0) + 1

    def observe_push(self, outcome: str, seconds: float) -> None:
        with self._lock:
            counts = self.push_counts.setdefault(outcome, [0] * (len(BUCKETS) + 1))
            counts[bisect.bisect_left(BUCKETS, seconds)] += 1
            self.push_sums[outcome] = self.push_sums.get(outcome, 0.0) + seconds

    def snapshot_dropped(self) -> dict[str, int]:
        with self._lock:
            return dict(self.dropped)


class ShipperCollector(Collector):
    """Exports one shipper's metrics (catalog section LOGS) at scrape time."""

    def __init__(self, stats: ShipperStats, dropped: Callable[[], Mapping[str, int]],
                 buffer_lines: Callable[[], int], buffer_bytes: Callable[[], int],
                 spool_bytes: Callable[[], int]) -> None:
        self._stats = stats
        self._dropped = dropped
        self._buffer_lines = buffer_lines
        self._buffer_bytes = buffer_bytes
        self._spool_bytes = spool_bytes

    def collect(self) -> Iterable[catalog.FamilyT]:
        s = self._stats
        with s._lock:
            sent, batches, nbytes = s.lines_sent, s.batches_sent, s.bytes_sent
            retries = dict(s.retries)
            counts = {k: list(v) for k, v in s.push_counts.items()}
            sums = dict(s.push_sums)
        for name, total in (("fleet_log_lines_sent_total", sent),
                            ("fleet_log_batches_sent_total", batches),
                            ("fleet_log_sent_bytes_total", nbytes)):
            c = catalog.counter(name)
            c.add_metric([], total)
            yield c
        for name, by_reason in (("fleet_log_lines_dropped_total", self._dropped()),
                                ("fleet_log_push_retries_total", retries)):
            c = catalog.counter(name)
            for reason, n in sorted(by_reason.items()):
                c.add_metric([reason], n)
            yield c
        h = catalog.family("fleet_log_push_duration_seconds")
        assert isinstance(h, HistogramMetricFamily)
        for outcome, bucket_counts in sorted(counts.items()):
            cumulative, buckets = 0, []
            for bound, n in zip([*map(str, BUCKETS), "+Inf"], bucket_counts, strict=True):
                cumulative += n
                buckets.append((bound, cumulative))
            h.add_metric([outcome], buckets, sums[outcome])
        yield h
        for name, value in (("fleet_log_buffer_lines", self._buffer_lines()),
                            ("fleet_log_buffer_bytes", self._buffer_bytes()),
                            ("fleet_log_spool_bytes", self._spool_bytes())):
            g = catalog.gauge(name)
            g.add_metric([], value)
            yield g

