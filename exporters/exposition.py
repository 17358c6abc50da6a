"""A :class:`Snapshot` as Prometheus metric families and as the ``/v1/gpus`` JSON.

Both render what the collector already holds: nothing here calls NVML. Series for
values a device does not support are absent, not zero.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client.core import Metric

from exporters.collector import GpuReading, Snapshot
from exporters.nvml import CLOCK_EVENT_REASONS
from fleetobs import catalog

BYTES_PER_KB = 1024  # nvmlDeviceGetPcieThroughput answers in KB/s


class SnapshotCollector:
    """A prometheus_client collector over the latest snapshot."""

    def __init__(self, snapshot: Callable[[], Snapshot], clock: Callable[[], float]) -> None:
        self._snapshot = snapshot
        self._clock = clock

    def collect(self) -> Iterator[Metric]:
        return iter(render(self._snapshot(), self._clock()))


def _fam(name: str) -> Any:
    return catalog.family(name)


def render(s: Snapshot, now: float) -> list[Metric]:
    m = s.machine
    fams: dict[str, Any] = {spec.name: _fam(spec.name) for spec in (*catalog.GPU, *catalog.CONTAINERS)}

    def add(name: str, labels: list[str], value: float) -> None:
        fams[name].add_metric(labels, value)

    if s.versions is not None:
        fams["fleet_gpu_driver"].add_metric([m, *s.versions], {})
    for g in s.gpus:
        _render_gpu(fams, m, g)
    for (gpu, xid), n in sorted(s.xids.items()):
        add("fleet_gpu_xid_errors_total", [m, str(gpu), str(xid)], n)
    for u in s.attribution.services:
        add("fleet_gpu_service_memory_used_bytes", [m, str(u.gpu), u.service, u.group],
            u.used_bytes)
        add("fleet_gpu_service_processes", [m, str(u.gpu), u.service, u.group], u.processes)
    for grp in s.attribution.groups:
        add("fleet_gpu_group_memory_used_bytes", [m, grp.group], grp.used_bytes)
        add("fleet_gpu_group_memory_budget_bytes", [m, grp.group], grp.budget_bytes)
    add("fleet_gpu_exporter_nvml_up", [m], 1 if s.nvml_up else 0)
    if not s.nvml_up and s.nvml_reason:
        add("fleet_gpu_exporter_nvml_down_reason", [m, s.nvml_reason], 1)
    for (call, reason), n in sorted(s.errors.items()):
        add("fleet_gpu_exporter_nvml_errors_total", [m, call, reason], n)
    for g in s.gpus:
        for call in sorted(g.unsupported):
            add("fleet_gpu_exporter_unsupported_call", [m, str(g.index), call], 1)
    if s.collect_duration is not None:
        h = s.collect_duration
        buckets = [(_le(b), c) for b, c in zip(h.buckets, h.counts, strict=False)]
        buckets.append(("+Inf", h.counts[-1]))
        fams["fleet_gpu_exporter_collect_duration_seconds"].add_metric([m], buckets, h.total)
    add("fleet_gpu_exporter_snapshot_age_seconds", [m], max(0.0, now - s.taken_at))
    add("fleet_gpu_exporter_docker_up", [m], 1 if s.docker_up else 0)
    for reason, n in sorted(s.skipped.items()):
        add("fleet_gpu_exporter_attribution_skipped_total", [m, reason], n)
    for c in s.containers.services:
        labels = [m, c.service, c.group]
        add("fleet_container_running", labels, 1 if c.running else 0)
        add("fleet_container_cpu_seconds_total", labels, c.cpu_seconds)
        if c.memory_working_set_bytes is not None:
            add("fleet_container_memory_working_set_bytes", labels, c.memory_working_set_bytes)
        if c.memory_limit_bytes is not None:
            add("fleet_container_memory_limit_bytes", labels, c.memory_limit_bytes)
        add("fleet_container_oom_kills_total", labels, c.oom_kills)
        add("fleet_container_restarts_total", labels, c.restarts)
    return [f for f in fams.values() if f.samples]


def _le(bound: float) -> str:
    return repr(float(bound))


def _render_gpu(fams: dict[str, Any], m: str, g: GpuReading) -> None:
    ids = [m, str(g.index)]

    def add(name: str, value: float, *extra: str) -> None:
        fams[name].add_metric([*ids, *extra], value)

    fams["fleet_gpu"].add_metric([*ids, g.uuid, g.name], {})
    if g.utilization is not None:
        add("fleet_gpu_utilization_ratio", g.utilization[0] / 100)
        add("fleet_gpu_memory_bandwidth_utilization_ratio", g.utilization[1] / 100)
    if g.memory is not None:
        add("fleet_gpu_memory_used_bytes", g.memory.used)
        add("fleet_gpu_memory_free_bytes", g.memory.free)
        add("fleet_gpu_memory_total_bytes", g.memory.total)
        if g.memory.reserved is not None:
            add("fleet_gpu_memory_reserved_bytes", g.memory.reserved)
    if g.temperature is not None:
        add("fleet_gpu_temperature_celsius", g.temperature)
    if g.power_mw is not None:
        add("fleet_gpu_power_watts", g.power_mw / 1000)
    if g.energy_mj is not None:
        add("fleet_gpu_energy_consumed_joules_total", g.energy_mj / 1000)
    for clock, mhz in sorted(g.clocks_mhz.items()):
        add("fleet_gpu_clock_hertz", mhz * 1_000_000, clock)
    if g.fan_percent is not None:
        add("fleet_gpu_fan_speed_ratio", g.fan_percent / 100)
    if g.pstate is not None and g.pstate <= 15:  # 32: NVML_PSTATE_UNKNOWN
        add("fleet_gpu_performance_state", g.pstate)
    if g.event_reasons is not None:
        states = {name: bool(g.event_reasons & bit) for bit, name in CLOCK_EVENT_REASONS.items()}
        known = sum(CLOCK_EVENT_REASONS)
        states["other"] = bool(g.event_reasons & ~known)
        fams["fleet_gpu_clock_event_reasons"].add_metric(ids, states)
    for direction, kbps in sorted(g.pcie_kbps.items()):
        add("fleet_gpu_pcie_throughput_bytes_per_second", kbps * BYTES_PER_KB, direction)
    if g.ecc_uncorrected is not None:
        add("fleet_gpu_ecc_uncorrected_errors_total", g.ecc_uncorrected)


def gpus_json(s: Snapshot, now: float) -> dict[str, Any]:
    """The exporter's ``GET /v1/gpus``: what the hub's GPU view reads."""
    return {
        "machine": s.machine,
        "age_seconds": round(max(0.0, now - s.taken_at), 3),
        "nvml": {"up": s.nvml_up, "reason": s.nvml_reason,
                 "driver_version": s.versions[0] if s.versions else None},
        "docker": {"up": s.docker_up, "reason": s.docker_reason},
        "gpus": [{
            "index": g.index, "uuid": g.uuid, "name": g.name,
            "memory_total_bytes": g.memory.total if g.memory else None,
            "memory_used_bytes": g.memory.used if g.memory else None,
            "memory_reserved_bytes": g.memory.reserved if g.memory else None,
            "memory_free_bytes": g.memory.free if g.memory else None,
            "utilization_ratio": g.utilization[0] / 100 if g.utilization else None,
        } for g in s.gpus],
        "services": [{
            "gpu": u.gpu, "service": u.service, "group": u.group or None,
            "used_bytes": u.used_bytes, "processes": u.processes,
        } for u in s.attribution.services],
        "groups": [{
            "group": grp.group, "service": grp.service, "used_bytes": grp.used_bytes,
            "budget_bytes": grp.budget_bytes,
        } for grp in s.attribution.groups],
    }
