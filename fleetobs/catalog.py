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
    "driver_version", "nvml_version", "cuda_version", "reason_code", "phase",
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
    _m("fleet_agent_up", "gauge",
       "Whether the agent is alive: 1 when up or degraded, else 0; absent for probe none agents.",
       "machine", "group", "agent"),
    _m("fleet_agent_state", "gauge",
       "One-hot state set of the agent: exactly one state label is 1.",
       "machine", "group", "agent", "state"),
    _m("fleet_agent_heartbeat_age_seconds", "gauge",
       "Seconds since the hub last heard from the agent; absent when never seen.",
       "machine", "group", "agent"),
    _m("fleet_agent_degraded_reason", "gauge",
       "Why a degraded agent is degraded, always 1, present only while it is: its failed "
       "health checks (health_checks.ready_signal=false), status=<word>, else other or "
       "unspecified (the full text is in the agent record).",
       "machine", "group", "agent", "reason"),
    _m("fleet_agent_interval_seconds", "gauge",
       "Heartbeat interval the agent is judged by (topology, or what it announced).",
       "machine", "group", "agent"),
    _m("fleet_agent_required", "gauge",
       "Whether the topology marks the agent required (1) or optional (0).",
       "machine", "group", "agent"),
    _m("fleet_agent_unknown", "gauge",
       "Agents that beat here but the topology does not place on this machine, always 1 "
       "(kind unknown: nowhere in the topology; kind foreign: on another machine).",
       "machine", "agent", "kind"),
    _m("fleet_group_agents", "gauge",
       "Agents of each group in each state (group empty for unknown agents).",
       "machine", "group", "state"),
    _m("fleet_hub_unknown_agents", "gauge",
       "Agents the topology does not place on this machine that sent observations.",
       "machine"),
    _m("fleet_hub_heartbeats_received_total", "counter",
       "Heartbeats and other observations (probe answers, self reports) accepted, by source.",
       "machine", "source"),
    _m("fleet_hub_heartbeats_rejected_total", "counter",
       "Heartbeats or requests refused, by reason.",
       "machine", "reason"),
    _m("fleet_hub_stalls_total", "counter",
       "Times the hub's judge loop ran late enough to trigger the pause guard.",
       "machine"),
    _m("fleet_hub_stalled_seconds_total", "counter",
       "Seconds of hub stall credited to agents by the pause guard.",
       "machine"),
    _m("fleet_hub_store_pending_writes", "gauge",
       "Agent records changed and not yet committed to SQLite (the flush in progress included).",
       "machine"),
    _m("fleet_hub_store_flushes_total", "counter",
       "Write-behind flushes to SQLite, by outcome.",
       "machine", "outcome"),
    _m("fleet_hub_store_flush_failures_total", "counter",
       "Write-behind flushes that failed, by reason: not_open, io (disk full, read-only, locked), "
       "damaged (the file was set aside), bad_row (a record skipped), other.",
       "machine", "reason"),
    _m("fleet_hub_open_files_limit", "gauge",
       "The hub process's soft limit of open files (RLIMIT_NOFILE), after raising it toward the hard limit.",
       "machine"),
    _m("fleet_hub_open_files", "gauge",
       "Files (sockets included) the hub process has open.",
       "machine"),
    _m("fleet_hub_http_timeouts_total", "counter",
       "HTTP connections closed for being idle or slow, by reason: head (no complete request head "
       "in time), body (the body not received in time, answered 408).",
       "machine", "reason"),
    _m("fleet_hub_startup_grace", "gauge",
       "Whether the hub is inside its startup grace (1), when missing agents may still appear.",
       "machine"),
    _m("fleet_hub_start_time_seconds", "gauge",
       "Unix time the hub process started.",
       "machine"),
    _m("fleet_hub_request_duration_seconds", "histogram",
       "Time the hub took to answer HTTP requests, by route template.",
       "method", "route", "code", buckets=LATENCY_BUCKETS),
)

# --- probing of legacy agents (hub/probing, fleetobs/probe) -------------------------
PROBE: tuple[MetricSpec, ...] = (
    _m("fleet_probe_latency_seconds", "histogram",
       "Round trip of health probes that got an answer, by protocol (zmq, http).",
       "machine", "protocol", buckets=LATENCY_BUCKETS),
    _m("fleet_probe_results_total", "counter",
       "Health probes by protocol and outcome (ok, degraded, error, invalid_reply: answered; "
       "timeout, refused, unreachable: no answer, which the liveness model judges as silence).",
       "machine", "protocol", "outcome"),
    _m("fleet_probe_cycle_duration_seconds", "histogram",
       "Time to probe every probed agent of the machine once.",
       "machine", buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)),
    _m("fleet_probe_targets", "gauge",
       "Agents probed each cycle, by protocol.", "machine", "protocol"),
    _m("fleet_probe_cycle_overruns_total", "counter",
       "Probe cycles that took longer than the probe interval (the next one started late).",
       "machine"),
)

# --- cross-machine sync (hub/sync) ---------------------------------------------------
SYNC: tuple[MetricSpec, ...] = (
    _m("fleet_peer_up", "gauge",
       "Whether sync with the peer hub works both ways: 1 when our last exchange succeeded "
       "and the peer was heard from recently, else 0 (its agents then show as unknown).",
       "machine", "peer"),
    _m("fleet_sync_last_success_age_seconds", "gauge",
       "Seconds since the last successful sync exchange with the peer; absent before the first.",
       "machine", "peer"),
    _m("fleet_sync_peer_data_age_seconds", "gauge",
       "Seconds since the last valid sync body arrived from the peer machine's hub.",
       "machine", "peer"),
    _m("fleet_sync_duration_seconds", "histogram",
       "Duration of successful sync exchanges with the peer, by kind (push or reconcile).",
       "machine", "peer", "kind", buckets=LATENCY_BUCKETS),
    _m("fleet_sync_failures_total", "counter",
       "Failed sync exchanges with the peer, by reason (timeout, connect, reset, http_4xx, ...).",
       "machine", "peer", "reason"),
    _m("fleet_sync_bytes_total", "counter",
       "Sync bytes exchanged with the peer, by direction (sent or received).",
       "machine", "peer", "direction"),
    _m("fleet_sync_records_received_total", "counter",
       "Agent records received from the peer, by outcome (accepted, stale, rejected).",
       "machine", "peer", "outcome"),
    _m("fleet_sync_rejected_total", "counter",
       "Sync requests or records refused, by reason (unauthorized, too_large, invalid, "
       "forged_owner, self_owner, stale_epoch, bad_version, unknown_machine).",
       "machine", "reason"),
)

# --- GPU exporter (exporters/) -------------------------------------------------------
GPU: tuple[MetricSpec, ...] = (
    # per GPU; uuid and name live only on the info metric
    _m("fleet_gpu", "info", "Identity of a GPU: its index on the machine, UUID and model name.",
       "machine", "gpu", "uuid", "name"),
    _m("fleet_gpu_driver", "info", "NVIDIA driver, NVML and CUDA driver versions on the machine.",
       "machine", "driver_version", "nvml_version", "cuda_version"),
    _m("fleet_gpu_utilization_ratio", "gauge",
       "Fraction of the last sample period in which a kernel ran on the GPU.", "machine", "gpu"),
    _m("fleet_gpu_memory_bandwidth_utilization_ratio", "gauge",
       "Fraction of the last sample period in which device memory was read or written.",
       "machine", "gpu"),
    _m("fleet_gpu_memory_used_bytes", "gauge",
       "Device memory allocated by processes (excludes driver-reserved memory when NVML can tell).",
       "machine", "gpu"),
    _m("fleet_gpu_memory_reserved_bytes", "gauge",
       "Device memory reserved by the driver and firmware.", "machine", "gpu"),
    _m("fleet_gpu_memory_free_bytes", "gauge", "Device memory free for allocation.",
       "machine", "gpu"),
    _m("fleet_gpu_memory_total_bytes", "gauge", "Installed device memory.", "machine", "gpu"),
    _m("fleet_gpu_temperature_celsius", "gauge", "GPU core temperature.", "machine", "gpu"),
    _m("fleet_gpu_power_watts", "gauge", "Power drawn by the board.", "machine", "gpu"),
    _m("fleet_gpu_energy_consumed_joules_total", "counter",
       "Energy used by the board since the driver loaded.", "machine", "gpu"),
    _m("fleet_gpu_clock_hertz", "gauge", "Current clock frequency by clock domain.",
       "machine", "gpu", "clock"),
    _m("fleet_gpu_fan_speed_ratio", "gauge",
       "Fan speed as a fraction of its maximum (the driver's intended speed).", "machine", "gpu"),
    _m("fleet_gpu_performance_state", "gauge",
       "Current performance state: 0 is P0 (maximum performance) to 15 (minimum).",
       "machine", "gpu"),
    _m("fleet_gpu_clock_event_reasons", "stateset",
       "Why clocks are held below their maximum now (throttle reasons); several can be true.",
       "machine", "gpu"),
    _m("fleet_gpu_pcie_throughput_bytes_per_second", "gauge",
       "PCIe throughput over the driver's last 20 ms window, sampled off the scrape path.",
       "machine", "gpu", "direction"),
    _m("fleet_gpu_xid_errors_total", "counter",
       "XID errors the driver reported while the exporter watched, by XID code.",
       "machine", "gpu", "xid"),
    _m("fleet_gpu_ecc_uncorrected_errors_total", "counter",
       "Uncorrected ECC errors since the driver loaded (only on cards with ECC).",
       "machine", "gpu"),
    # attribution to compose services and container groups
    _m("fleet_gpu_service_memory_used_bytes", "gauge",
       "Device memory used by the processes of one compose service (host: not in a container).",
       "machine", "gpu", "service", "group"),
    _m("fleet_gpu_service_processes", "gauge",
       "Processes of one compose service holding a context on the GPU.",
       "machine", "gpu", "service", "group"),
    _m("fleet_gpu_group_memory_used_bytes", "gauge",
       "Device memory used by a container group on all GPUs of its machine.", "machine", "group"),
    _m("fleet_gpu_group_memory_budget_bytes", "gauge",
       "The container group's GPU memory budget from the topology (0: none).", "machine", "group"),
    # about the exporter itself
    _m("fleet_gpu_exporter_nvml_up", "gauge",
       "One when NVML answered the last collection, 0 when it is unavailable.", "machine"),
    _m("fleet_gpu_exporter_nvml_down_reason", "gauge",
       "Why NVML is unavailable: 1 for the current reason, present only while it is down.", "machine", "reason"),
    _m("fleet_gpu_exporter_nvml_errors_total", "counter",
       "NVML calls that failed, by call and NVML error.", "machine", "call", "reason"),
    _m("fleet_gpu_exporter_unsupported_call", "gauge",
       "NVML calls a device does not support, 1 each (their series are omitted).",
       "machine", "gpu", "call"),
    _m("fleet_gpu_exporter_collect_duration_seconds", "histogram",
       "Time one background collection took.", "machine", buckets=LATENCY_BUCKETS),
    _m("fleet_gpu_exporter_snapshot_age_seconds", "gauge",
       "Age of the snapshot this scrape serves.", "machine"),
    _m("fleet_gpu_exporter_docker_up", "gauge",
       "One when the Docker Engine API answered (services are compose names), 0 when "
       "services fall back to container ids.", "machine"),
    _m("fleet_gpu_exporter_attribution_skipped_total", "counter",
       "GPU processes that could not be attributed, by reason.", "machine", "reason"),
)

# --- container resources per compose service (exporters/, from cgroups and the Docker API) ---
CONTAINERS: tuple[MetricSpec, ...] = (
    _m("fleet_container_running", "gauge",
       "Whether the compose service's container is running (1) or not (0).",
       "machine", "service", "group"),
    _m("fleet_container_cpu_seconds_total", "counter",
       "CPU time the compose service's container used (user and system).",
       "machine", "service", "group"),
    _m("fleet_container_memory_working_set_bytes", "gauge",
       "Memory the compose service's container uses that cannot be reclaimed "
       "(usage minus inactive file cache), what the OOM killer judges.",
       "machine", "service", "group"),
    _m("fleet_container_memory_limit_bytes", "gauge",
       "Memory limit of the compose service's container (0: none).",
       "machine", "service", "group"),
    _m("fleet_container_oom_kills_total", "counter",
       "Processes of the compose service's container killed by the OOM killer.",
       "machine", "service", "group"),
    _m("fleet_container_restarts_total", "counter",
       "Times Docker restarted the compose service's container.",
       "machine", "service", "group"),
)

# --- log shipping and tracing (fleetobs/logs) ----------------------------------------
LOGS: tuple[MetricSpec, ...] = (
    _m("fleet_log_lines_sent_total", "counter",
       "Log lines Loki accepted from this process's shipper."),
    _m("fleet_log_batches_sent_total", "counter",
       "Push requests Loki accepted from this process's shipper."),
    _m("fleet_log_sent_bytes_total", "counter",
       "Compressed push body bytes Loki accepted from this process's shipper."),
    _m("fleet_log_lines_dropped_total", "counter",
       "Log lines the shipper gave up on, by reason (buffer_full, line_too_large, closed, "
       "rejected, too_large, too_old, spool_full, spool_corrupt, shutdown).",
       "reason"),
    _m("fleet_log_push_retries_total", "counter",
       "Pushes to Loki that will be retried, by reason (rate_limited, server_error, "
       "connection, timeout).",
       "reason"),
    _m("fleet_log_push_duration_seconds", "histogram",
       "Time of one push request to Loki, by outcome (sent, retry, rejected, too_large).",
       "outcome", buckets=LATENCY_BUCKETS),
    _m("fleet_log_buffer_lines", "gauge",
       "Log lines waiting in the shipper's memory buffer."),
    _m("fleet_log_buffer_bytes", "gauge",
       "Estimated bytes of log lines waiting in the shipper's memory buffer."),
    _m("fleet_log_spool_bytes", "gauge",
       "Bytes of batches waiting in the shipper's spool (disk, or memory without a spool)."),
)

CATALOG: tuple[MetricSpec, ...] = HUB + PROBE + SYNC + GPU + CONTAINERS + LOGS
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


def gauge(name: str) -> GaugeMetricFamily:
    """:func:`family` for a gauge, typed; a kind mismatch is a bug in the caller."""
    f = family(name)
    if not isinstance(f, GaugeMetricFamily):
        raise TypeError(f"{name} is a {spec(name).kind}, not a gauge")
    return f


def counter(name: str) -> CounterMetricFamily:
    f = family(name)
    if not isinstance(f, CounterMetricFamily):
        raise TypeError(f"{name} is a {spec(name).kind}, not a counter")
    return f


def histogram(name: str) -> HistogramMetricFamily:
    f = family(name)
    if not isinstance(f, HistogramMetricFamily):
        raise TypeError(f"{name} is a {spec(name).kind}, not a histogram")
    return f


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
