"""The one catalog of every metric fleetobs emits.

Rules: names start with ``fleet_``; base units (``_bytes``, ``_seconds``, ``_ratio``,
``_celsius``, ``_watts``, ``_joules``, ``_hertz``); counters end in ``_total``; labels
come from :data:`ALLOWED_LABELS` only (bounded: never pid, never free text).
Generated rules and dashboards may reference only names from here
(tests/fleetobs/test_catalog.py proves both).

Code that emits a metric builds its family from here (:func:`family`), so a name,
help text or label set cannot drift between emitter and catalog.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    StateSetMetricFamily,
)

Kind = Literal["counter", "gauge", "histogram", "info", "stateset"]

#: Every label any fleetobs metric may carry. Each has a bounded value set
#: (topology names, enums, GPU indexes, reasons from a fixed list).
ALLOWED_LABELS: frozenset[str] = frozenset({
    "machine", "group", "agent", "gpu", "uuid", "name", "service", "state", "status",
    "source", "reason", "peer", "protocol", "endpoint", "method", "route", "code",
    "call", "xid", "clock", "direction", "level", "outcome", "kind", "stream", "version",
    "driver_version", "nvml_version", "cuda_version", "reason_code",
})

UNIT_SUFFIXES = ("_bytes", "_seconds", "_ratio", "_celsius", "_watts", "_joules", "_hertz")

FamilyT = CounterMetricFamily | GaugeMetricFamily | HistogramMetricFamily | InfoMetricFamily | StateSetMetricFamily


@dataclass(frozen=True)
class MetricSpec:
    name: str
    kind: Kind
    help: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = field(default=())

    def exposed_names(self) -> frozenset[str]:
        """Series names a scrape shows for this metric (what PromQL can reference)."""
        if self.kind == "histogram":
            return frozenset({f"{self.name}_bucket", f"{self.name}_sum", f"{self.name}_count"})
        if self.kind == "info":
            return frozenset({f"{self.name}_info"})
        return frozenset({self.name})


def _m(name: str, kind: Kind, help: str, *labels: str, buckets: Sequence[float] = ()) -> MetricSpec:
    return MetricSpec(name, kind, help, tuple(labels), tuple(buckets))


LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# Each section belongs to one part of fleetobs; add new metrics to the section of the
# code that emits them.

# --- hub: agents, liveness, heartbeats (hub/) ---------------------------------------
HUB: tuple[MetricSpec, ...] = (
)

# --- probing of legacy agents (hub/probing, fleetobs/probe) -------------------------
PROBE: tuple[MetricSpec, ...] = (
)

# --- cross-machine sync (hub/sync) ---------------------------------------------------
SYNC: tuple[MetricSpec, ...] = (
)

# --- GPU exporter (exporters/) -------------------------------------------------------
GPU: tuple[MetricSpec, ...] = (
)

# --- log shipping and tracing (fleetobs/logs) ----------------------------------------
LOGS: tuple[MetricSpec, ...] = (
)

CATALOG: tuple[MetricSpec, ...] = HUB + PROBE + SYNC + GPU + LOGS
BY_NAME: dict[str, MetricSpec] = {m.name: m for m in CATALOG}


def spec(name: str) -> MetricSpec:
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"{name!r} is not in the metrics catalog (fleetobs/catalog.py)") from None


def family(name: str, labels: Iterable[str] | None = None) -> FamilyT:
    """A fresh metric family for a catalog entry, for use in a custom collector."""
    s = spec(name)
    label_names = list(s.labels if labels is None else labels)
    if s.kind == "counter":
        return CounterMetricFamily(s.name.removesuffix("_total"), s.help, labels=label_names)
    if s.kind == "gauge":
        return GaugeMetricFamily(s.name, s.help, labels=label_names)
    if s.kind == "histogram":
        return HistogramMetricFamily(s.name, s.help, labels=label_names)
    if s.kind == "info":
        return InfoMetricFamily(s.name, s.help, labels=label_names)
    return StateSetMetricFamily(s.name, s.help, labels=label_names)


def all_exposed_names() -> frozenset[str]:
    return frozenset().union(*(m.exposed_names() for m in CATALOG)) if CATALOG else frozenset()


def naming_problems(m: MetricSpec) -> list[str]:
    """Why a spec breaks the naming rules (empty when it is fine)."""
    out: list[str] = []
    if not m.name.startswith("fleet_"):
        out.append(f"{m.name}: must start with 'fleet_'")
    if m.kind == "counter" and not m.name.endswith("_total"):
        out.append(f"{m.name}: counters end in '_total'")
    if m.kind != "counter" and m.name.endswith("_total"):
        out.append(f"{m.name}: only counters end in '_total'")
    if m.kind == "info" and m.name.endswith("_info"):
        out.append(f"{m.name}: info metrics get '_info' appended; leave it out of the name")
    for bad in ("_milliseconds", "_ms", "_percent", "_kb", "_mb", "_gb", "_mib", "_gib", "_kilobytes", "_megabytes"):
        if bad + "_" in m.name + "_":
            out.append(f"{m.name}: use base units, not {bad[1:]}")
    if m.kind == "histogram" and not m.name.endswith(UNIT_SUFFIXES):
        out.append(f"{m.name}: histograms measure a unit; end the name with one of {UNIT_SUFFIXES}")
    for label in m.labels:
        if label not in ALLOWED_LABELS:
            out.append(f"{m.name}: label {label!r} is not in ALLOWED_LABELS")
    if "pid" in m.labels:
        out.append(f"{m.name}: pid is unbounded")
    if not m.help or not m.help[0].isupper():
        out.append(f"{m.name}: help must be a sentence")
    return out
