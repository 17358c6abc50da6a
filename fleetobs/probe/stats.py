"""Counters and histograms of probing, kept in plain numbers (stdlib only) and turned
into Prometheus families at scrape time by ``fleetobs.probe.collector``."""

from __future__ import annotations

import bisect
import threading
from collections.abc import Mapping, Sequence

from fleetobs.probe.result import Outcome, ProbeResult, Protocol

#: Bucket bounds; fleetobs/catalog.py declares the same (tests/fleetobs/probe proves it).
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                   5.0, 10.0)
CYCLE_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class Histogram:
    """Cumulative-bucket histogram without a registry."""

    def __init__(self, buckets: Sequence[float]) -> None:
        self.bounds = tuple(sorted(buckets))
        self.counts = [0] * (len(self.bounds) + 1)  # last: above the highest bound
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value

    @property
    def count(self) -> int:
        return sum(self.counts)

    def cumulative(self) -> list[tuple[str, float]]:
        out: list[tuple[str, float]] = []
        running = 0
        for bound, n in zip(self.bounds, self.counts, strict=False):
            running += n
            out.append((_fmt(bound), float(running)))
        out.append(("+Inf", float(running + self.counts[-1])))
        return out


class ProbeStats:
    """What probing did so far. Written on the event loop, read by scrapes on other threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latency = {p: Histogram(LATENCY_BUCKETS) for p in Protocol}
        self.results = {(p, o): 0 for p in Protocol for o in Outcome}
        self.cycle = Histogram(CYCLE_BUCKETS)
        self.last_cycle_seconds: float | None = None
        self.targets: dict[Protocol, int] = dict.fromkeys(Protocol, 0)
        self.overruns = 0

    def observe_result(self, result: ProbeResult) -> None:
        with self.lock:
            self.results[(result.protocol, result.outcome)] += 1
            if result.latency_seconds is not None and result.answered:
                self.latency[result.protocol].observe(result.latency_seconds)

    def observe_cycle(self, seconds: float, targets: Mapping[Protocol, int]) -> None:
        with self.lock:
            self.cycle.observe(seconds)
            self.last_cycle_seconds = seconds
            self.targets = dict(targets)

    def observe_overrun(self) -> None:
        with self.lock:
            self.overruns += 1

    def not_answered(self) -> int:
        with self.lock:
            return sum(n for (_, o), n in self.results.items() if not o.answered)


def _fmt(bound: float) -> str:
    return repr(float(bound))
