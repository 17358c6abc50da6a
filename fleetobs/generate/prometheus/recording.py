"""The recording rules: the contract between the alert rules and the dashboards.

Names follow ``level:metric:operations``. Everything here reads catalog metrics only and
aggregates per-agent series away, so dashboards and alerts stay cheap at 10,000 agents.
Dashboards may query these names; renaming one is a breaking change for both.

SLO windows: ``machine_group:fleet_agent_unavailable:ratio`` is the SLI (fraction of a
group's monitored agents not up); the ``ratio_avg<window>`` rules average it over the
multi-window multi-burn-rate windows (Google SRE workbook, kubernetes-mixin).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RecordingRule:
    record: str
    expr: str
    help: str


#: Windows the burn-rate alerts read (short and long window of each pair).
SLO_WINDOWS: tuple[str, ...] = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")

_AVAILABILITY = "machine_group:fleet_agent_up:ratio"
_UNAVAILABLE = "machine_group:fleet_agent_unavailable:ratio"

FLEET: tuple[RecordingRule, ...] = (
    RecordingRule("machine_state:fleet_group_agents:sum",
                  "sum by (machine, state) (fleet_group_agents)",
                  "Agents of each machine in each state."),
    RecordingRule("machine_group:fleet_agent_up:sum",
                  "sum by (machine, group) (fleet_agent_up)",
                  "Agents of each group that are up (or degraded)."),
    RecordingRule("machine_group:fleet_agent_monitored:count",
                  "count by (machine, group) (fleet_agent_up)",
                  "Monitored agents of each group (probe none agents are not counted)."),
    RecordingRule(_AVAILABILITY,
                  "machine_group:fleet_agent_up:sum / machine_group:fleet_agent_monitored:count",
                  "Fraction of each group's monitored agents that are up: the availability SLI."),
    RecordingRule(_UNAVAILABLE, f"1 - {_AVAILABILITY}",
                  "Fraction of each group's monitored agents that are not up: the SLO error ratio."),
    RecordingRule("machine_source:fleet_hub_heartbeats_received:rate5m",
                  "sum by (machine, source) (rate(fleet_hub_heartbeats_received_total[5m]))",
                  "Observations accepted per second, by source."),
    RecordingRule("machine_reason:fleet_hub_heartbeats_rejected:rate5m",
                  "sum by (machine, reason) (rate(fleet_hub_heartbeats_rejected_total[5m]))",
                  "Heartbeats refused per second, by reason."),
    RecordingRule("machine_peer:fleet_sync_last_success_age_seconds:max",
                  "max by (machine, peer) (fleet_sync_last_success_age_seconds)",
                  "Seconds since the last successful sync with each peer."),
)

GPU: tuple[RecordingRule, ...] = (
    RecordingRule("machine_group:fleet_gpu_group_memory_budget_used:ratio",
                  "fleet_gpu_group_memory_used_bytes / (fleet_gpu_group_memory_budget_bytes > 0)",
                  "GPU memory a group uses as a fraction of its budget (groups with a budget)."),
    RecordingRule("machine:fleet_gpu_memory_used:ratio",
                  "sum by (machine) (fleet_gpu_memory_used_bytes) / sum by (machine) (fleet_gpu_memory_total_bytes)",
                  "Fraction of each machine's GPU memory in use."),
    RecordingRule("machine:fleet_gpu_group_memory_budget:sum",
                  "sum by (machine) (fleet_gpu_group_memory_budget_bytes)",
                  "GPU memory budgets of a machine's groups added up (the plan over-commits)."),
)

CONTAINERS: tuple[RecordingRule, ...] = (
    RecordingRule("machine_service:fleet_container_cpu:rate5m",
                  "sum by (machine, service, group) (rate(fleet_container_cpu_seconds_total[5m]))",
                  "CPU cores each compose service uses."),
    RecordingRule("machine_service:fleet_container_memory_limit_used:ratio",
                  "fleet_container_memory_working_set_bytes / (fleet_container_memory_limit_bytes > 0)",
                  "Working set of each compose service as a fraction of its memory limit."),
)

SLO: tuple[RecordingRule, ...] = tuple(
    RecordingRule(f"{_UNAVAILABLE}_avg{w}", f"avg_over_time({_UNAVAILABLE}[{w}])",
                  f"The SLO error ratio averaged over {w}.")
    for w in SLO_WINDOWS
)

#: Rule groups as Prometheus evaluates them, in order.
GROUPS: dict[str, tuple[RecordingRule, ...]] = {
    "fleet.recording": FLEET,
    "fleet.gpu.recording": GPU,
    "fleet.containers.recording": CONTAINERS,
    "fleet.slo.recording": SLO,
}


def names() -> frozenset[str]:
    """Every recorded series name (what dashboards may query besides the catalog)."""
    return frozenset(r.record for group in GROUPS.values() for r in group)
