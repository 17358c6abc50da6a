"""What ``/metrics`` shows: per-agent series rendered fast, hub counters via a collector.

Per-agent families (``fleet_agent_*``, ``fleet_group_agents``) are rendered straight
into the text exposition format from a snapshot of the registry: at 10,000 agents
that is ~100k series, which prometheus_client's generic path needs seconds for. The
renderer takes names, help and types from the catalog (fleetobs/catalog.py), so it
cannot drift from it, caches each record's unchanging lines, and works in steps of
1,000 agents that the /metrics route (hub.api.health) interleaves with heartbeats on
the event loop. Label values need no escaping: every name matches NAME_PATTERN.

The hub's own small metrics go through a normal custom collector (:class:`HubCollector`)
registered on the hub's own CollectorRegistry, next to the plugins' collectors.
"""

from __future__ import annotations

import bisect
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from fleetobs import catalog
from hub.liveness import ALIVE, STATES, StallGuard, State
from hub.registry import Kind, Record
from hub.runtime import OpenFiles

_INF = float("inf")


#: Reasons kept as a label value: built from the agent's fixed health-check names or its
#: status word (bounded, and safe in the text format without escaping). Anything else is
#: free text and stays in the agent record.
_CHECK = r"health_checks\.[A-Za-z0-9_]{1,64}=false"
_BOUNDED_REASON = re.compile(rf"^(?:{_CHECK}(?:, {_CHECK}){{0,7}}|status=[A-Za-z_]{{1,32}})$")


def reason_label(reason: str | None) -> str:
    """The ``reason`` label of ``fleet_agent_degraded_reason`` for the hub's reason text."""
    if not reason:
        return "unspecified"
    return reason if _BOUNDED_REASON.match(reason) else "other"


def _header(name: str) -> str:
    s = catalog.spec(name)
    kind = "gauge" if s.kind in ("gauge", "stateset") else s.kind
    return f"# HELP {s.name} {s.help}\n# TYPE {s.name} {kind}\n"


def _static_lines(rec: Record, key: tuple[State, float]) -> tuple[object, str, str, str, str]:
    st, interval = key
    labels = rec.labels
    up = f"fleet_agent_up{{{labels}}} {1 if st in ALIVE else 0}\n" if rec.timing.monitored else ""
    states = "".join(
        f'fleet_agent_state{{{labels},state="{s}"}} {1 if s is st else 0}\n' for s in STATES)
    return (key, up, states, f"fleet_agent_interval_seconds{{{labels}}} {interval:g}\n",
            f"fleet_agent_required{{{labels}}} {1 if rec.required else 0}\n")


def render_steps(records: Sequence[Record], machine: str, now: float, out: list[bytes],
                 chunk: int = 1000) -> Iterator[None]:
    """Render the per-agent families for ``records`` (Prometheus text format 0.0.4) into
    ``out``, yielding after every ``chunk`` records so a caller on the event loop can let
    heartbeats in between (each step is ~1-2 ms at 1,000 agents).

    Records are read without locks, possibly across steps: a scrape may mix values from
    two consecutive heartbeats of one agent, which is harmless.
    """
    up: list[str] = []
    state_lines: list[str] = []
    age: list[str] = []
    interval: list[str] = []
    required: list[str] = []
    unknown: list[str] = []
    reasons: list[str] = []
    groups: Counter[tuple[str, State]] = Counter()
    for n, rec in enumerate(records, 1):
        t = rec.timing
        st = t.state
        groups[(rec.group or "", st)] += 1
        # Lines that change only with the state or the interval are cached on the record:
        # a scrape then formats one number per agent (the age) instead of ten lines.
        key = (st, t.interval)
        cached = rec.rendered
        if cached is None or cached[0] != key:
            cached = rec.rendered = _static_lines(rec, key)
        if cached[1]:
            up.append(cached[1])
        state_lines.append(cached[2])
        interval.append(cached[3])
        required.append(cached[4])
        if st is State.DEGRADED:
            reasons.append(f'fleet_agent_degraded_reason{{{rec.labels},reason="{reason_label(rec.reason)}"}} 1\n')
        if t.last_seen is not None:
            age.append(f"fleet_agent_heartbeat_age_seconds{{{rec.labels}}} "
                       f"{max(now - t.last_seen, 0.0):.3f}\n")
        if rec.kind is not Kind.EXPECTED:
            unknown.append(
                f'fleet_agent_unknown{{machine="{machine}",agent="{rec.name}",kind="{rec.kind}"}} 1\n'
            )
        if n % chunk == 0:
            yield
    group_lines = [
        f'fleet_group_agents{{machine="{machine}",group="{g}",state="{s}"}} {n}\n'
        for (g, s), n in sorted(groups.items())
    ]
    for name, lines in (("fleet_agent_up", up), ("fleet_agent_state", state_lines),
                        ("fleet_agent_heartbeat_age_seconds", age),
                        ("fleet_agent_interval_seconds", interval),
                        ("fleet_agent_required", required), ("fleet_agent_unknown", unknown),
                        ("fleet_agent_degraded_reason", reasons),
                        ("fleet_group_agents", group_lines)):
        out.append(_header(name).encode())
        for i in range(0, len(lines), chunk * 4):
            out.append("".join(lines[i:i + chunk * 4]).encode())
            yield


def render_agents(records: Sequence[Record], machine: str, now: float) -> str:
    """All of :func:`render_steps` at once (tests, tools)."""
    out: list[bytes] = []
    for _ in render_steps(records, machine, now, out):
        pass
    return b"".join(out).decode()


class RequestStats:
    """Histogram of request durations by (method, route template, code).

    Route templates and methods are bounded by the app's routes (unmatched paths count
    as route ``other``), so the label set is bounded.
    """

    def __init__(self, buckets: Sequence[float] = catalog.LATENCY_BUCKETS) -> None:
        self.buckets = tuple(buckets)
        self._lock = threading.Lock()  # collect() runs in a worker thread
        self._series: dict[tuple[str, str, str], list[float]] = {}

    def observe(self, method: str, route: str, code: int, seconds: float) -> None:
        key = (method, route, str(code))
        with self._lock:
            row = self._series.get(key)
            if row is None:
                # bucket counts..., +Inf count, sum
                row = self._series[key] = [0.0] * (len(self.buckets) + 2)
            row[bisect.bisect_left(self.buckets, seconds)] += 1
            row[-1] += seconds

    def family(self) -> HistogramMetricFamily:
        fam = catalog.histogram("fleet_hub_request_duration_seconds")
        with self._lock:
            items = [(k, list(v)) for k, v in sorted(self._series.items())]
        for (method, route, code), row in items:
            cumulative: list[tuple[str, float]] = []
            total = 0.0
            for le, n in zip((*self.buckets, _INF), row[:-1], strict=True):
                total += n
                cumulative.append(("+Inf" if le == _INF else repr(le), total))
            fam.add_metric([method, route, code], cumulative, sum_value=row[-1])
        return fam


@dataclass
class HubCounters:
    """Counters the hub increments on the event loop and the collector reads."""

    received: Counter[str] = field(default_factory=Counter)  # by source
    rejected: Counter[str] = field(default_factory=Counter)  # by reason
    flushes: Counter[str] = field(default_factory=Counter)  # by outcome
    flush_failures: Counter[str] = field(default_factory=Counter)  # by reason (hub.store.REASONS)
    timeouts: Counter[str] = field(default_factory=Counter)  # HTTP, by reason (head, body)
    requests: RequestStats = field(default_factory=RequestStats)


def _simple(name: str) -> GaugeMetricFamily | CounterMetricFamily:
    fam = catalog.family(name)
    assert isinstance(fam, GaugeMetricFamily | CounterMetricFamily), name
    return fam


class HubCollector(Collector):
    """The hub's own families (not per agent)."""

    def __init__(self, machine: str, counters: HubCounters, guard: StallGuard,
                 unknown_agents: Callable[[], int], pending_writes: Callable[[], int],
                 in_startup_grace: Callable[[], bool], start_wall: float,
                 open_files: OpenFiles | None = None) -> None:
        self.machine = machine
        self.open_files = open_files
        self.counters = counters
        self.guard = guard
        self.unknown_agents = unknown_agents
        self.pending_writes = pending_writes
        self.in_startup_grace = in_startup_grace
        self.start_wall = start_wall

    def _one(self, name: str, value: float) -> Metric:
        fam = _simple(name)
        fam.add_metric([self.machine], value)
        return fam

    def _by(self, name: str, counts: Iterable[tuple[str, int]]) -> Metric:
        fam = _simple(name)
        for key, n in sorted(counts):
            fam.add_metric([self.machine, key], n)
        return fam

    def collect(self) -> Iterator[Metric]:
        c = self.counters
        yield self._one("fleet_hub_unknown_agents", self.unknown_agents())
        yield self._by("fleet_hub_heartbeats_received_total", list(c.received.items()))
        yield self._by("fleet_hub_heartbeats_rejected_total", list(c.rejected.items()))
        yield self._one("fleet_hub_stalls_total", self.guard.stalls)
        yield self._one("fleet_hub_stalled_seconds_total", self.guard.stalled_seconds)
        yield self._one("fleet_hub_store_pending_writes", self.pending_writes())
        yield self._by("fleet_hub_store_flushes_total", list(c.flushes.items()))
        yield self._by("fleet_hub_store_flush_failures_total", list(c.flush_failures.items()))
        yield self._by("fleet_hub_http_timeouts_total", list(c.timeouts.items()))
        if self.open_files is not None:
            limit, used = self.open_files.sample()  # a directory listing: cheap, and current
            if limit > 0:
                yield self._one("fleet_hub_open_files_limit", limit)
            if used is not None:
                yield self._one("fleet_hub_open_files", used)
        yield self._one("fleet_hub_startup_grace", 1 if self.in_startup_grace() else 0)
        yield self._one("fleet_hub_start_time_seconds", self.start_wall)
        yield c.requests.family()
