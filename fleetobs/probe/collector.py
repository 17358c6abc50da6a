"""Prometheus view of :class:`~fleetobs.probe.stats.ProbeStats` (catalog families,
built at scrape time; no global metrics)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import (
    Metric,
)

from fleetobs import catalog
from fleetobs.probe.stats import ProbeStats


class ProbeCollector:
    """Prometheus collector over a :class:`ProbeStats` (register it with any registry)."""

    def __init__(self, stats: ProbeStats, machine: str) -> None:
        self._stats = stats
        self._machine = machine

    def collect(self) -> Iterator[Metric]:
        s, m = self._stats, self._machine
        with s.lock:
            latency = catalog.histogram("fleet_probe_latency_seconds")
            for p, h in s.latency.items():
                latency.add_metric([m, p.value], h.cumulative(), h.total)
            results = catalog.counter("fleet_probe_results_total")
            for (p, o), n in s.results.items():
                results.add_metric([m, p.value, o.value], n)
            cycle = catalog.histogram("fleet_probe_cycle_duration_seconds")
            cycle.add_metric([m], s.cycle.cumulative(), s.cycle.total)
            targets = catalog.gauge("fleet_probe_targets")
            for p, n in s.targets.items():
                targets.add_metric([m, p.value], n)
            overruns = catalog.counter("fleet_probe_cycle_overruns_total")
            overruns.add_metric([m], s.overruns)
        yield from (latency, results, cycle, targets, overruns)

    def describe(self) -> Iterator[Metric]:
        # Describing without collecting keeps registration cheap and lock-free.
        for name in ("fleet_probe_latency_seconds", "fleet_probe_results_total",
                     "fleet_probe_cycle_duration_seconds", "fleet_probe_targets",
                     "fleet_probe_cycle_overruns_total"):
            yield catalog.family(name)



