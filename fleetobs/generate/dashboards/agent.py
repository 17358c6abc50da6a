"""Agent detail (templated on ``agent``): its state over time, heartbeats, probes, its
group and dependencies, its GPU memory and its logs.

Per-agent facts the metrics do not carry come from elsewhere: the agent's group from a
join on ``fleet_agent_state`` (so the GPU panels follow the agent, whatever ``group``
is set to), its dependencies from the topology (a value mapping, agent -> list).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fleetobs.generate import links
from fleetobs.generate.dashboards.document import MACHINE, STATE_MAPPING, dashboard, state_code
from fleetobs.generate.dashboards.overview import AGENT_LINK
from fleetobs.generate.dashboards.panels import (
    Grid,
    dashed,
    logs,
    loki,
    merge_table,
    prom,
    stat,
    state_timeline,
    steps,
    table,
    timeseries,
    value_map,
)

if TYPE_CHECKING:
    from fleetobs.topology.model import Topology

THIS = f'{MACHINE}, agent="$agent"'
#: 1 for each (machine, group) the agent is in: multiply by it to follow the agent.
ITS_GROUP = f'count by (machine, group) (fleet_agent_state{{{THIS}, state="up"}})'
ITS_MACHINE = f'count by (machine) (fleet_agent_state{{{THIS}, state="up"}})'


def dependencies_mapping(topology: Topology) -> dict[str, Any]:
    """Agent name -> its dependencies as text (machine-qualified when a name is on both)."""
    by_name: dict[str, list[str]] = {}
    for a in topology.agents:
        deps = ", ".join(a.dependencies) or "nothing"
        by_name.setdefault(a.name, []).append(f"{a.machine}: {deps}")
    return value_map({name: (texts[0].split(": ", 1)[1] if len(texts) == 1 else "; ".join(texts), "text")
                      for name, texts in sorted(by_name.items())})


def _quantile(q: float, metric: str, by: str) -> str:
    return (f"histogram_quantile({q:g}, sum by (le, {by}) (rate({metric}_bucket{{{MACHINE}}}[$__rate_interval])) "
            f"* on (machine) group_left () {ITS_MACHINE})")


def render(topology: Topology) -> dict[str, Any]:
    grid = Grid()
    grid.row("State")
    grid.add(stat("State now", "The agent's state as its hub judges it now.", "none",
                  [prom(state_code(THIS))], mappings=[STATE_MAPPING], background=True,
                  thresholds=steps((None, "text"))), 6, 4)
    grid.add(stat("Heard from", "Seconds since the hub last heard from the agent (heartbeat or "
                  "probe answer); empty when never seen.", "s",
                  [prom(f"max(fleet_agent_heartbeat_age_seconds{{{THIS}}})")],
                  thresholds=steps((None, "green"), (30, "yellow"), (90, "red"))), 6, 4)
    grid.add(stat("Required", "Whether the topology marks the agent required (its group is "
                  "unhealthy without it) or optional.", "none",
                  [prom(f"max(fleet_agent_required{{{THIS}}})")],
                  mappings=[value_map({"1": ("required", "blue"), "0": ("optional", "text")})]), 6, 4)
    grid.add(stat("Group", "The container group (compose service) the agent runs in.", "none",
                  [prom(ITS_GROUP, "{{machine}} / {{group}}")], text_mode="name"), 6, 4)
    grid.add(state_timeline("State over time", "The agent's state over time: green up, yellow "
                            "degraded, orange suspect, red missing, dark red down.",
                            [prom(state_code(THIS), "{{agent}} on {{machine}}")], [STATE_MAPPING]), 24, 5)
    grid.add(timeseries("Heartbeat age against its interval", "Seconds since the hub heard from "
                        "the agent, and the interval it is judged by: silent for 2 intervals it "
                        "turns suspect, for 3 down.", "s",
                        [prom(f"fleet_agent_heartbeat_age_seconds{{{THIS}}}", "heard from (ago)"),
                         prom(f"fleet_agent_interval_seconds{{{THIS}}}", "interval")]), 12, 8)
    grid.add(timeseries("Probe latency on its machine", "Round trip of the health probes its hub "
                        "sends (p50 and p99, by protocol; the hub measures them per machine, not "
                        "per agent).", "s",
                        [prom(_quantile(0.5, "fleet_probe_latency_seconds", "machine, protocol"), "p50 {{protocol}}"),
                         prom(_quantile(0.99, "fleet_probe_latency_seconds", "machine, protocol"),
                              "p99 {{protocol}}")]), 12, 8)

    grid.row("Its group and dependencies")
    grid.add(table("Its group now", "Every agent of the agent's group and its state now. Click an "
                   "agent for its detail.", "none",
                   [prom(f'max by (machine, group, agent, state) ((fleet_agent_state{{{MACHINE}}} == 1) '
                         f"and on (machine, group) {ITS_GROUP})", instant=True, table=True)],
                   transformations=merge_table(hide=("Time", "Value"), order=("machine", "group", "agent")),
                   links=[AGENT_LINK]), 12, 8)
    grid.add(table("Depends on", "The agents it depends on, from the topology (the startup "
                   "configs' dependencies).", "none",
                   [prom(f"count by (agent) (fleet_agent_state{{{THIS}, state=\"up\"}})", instant=True, table=True)],
                   mappings=[dependencies_mapping(topology)],
                   transformations=merge_table(hide=("Time", "Value"), rename={"agent": "depends on"})), 12, 8)

    grid.row("GPU and logs")
    grid.add(timeseries("GPU memory of its group", "Device memory the compose service of the agent's "
                        "group uses, on each GPU, against the group's budget (dashed).", "bytes",
                        [prom(f"sum by (machine, service, gpu) (fleet_gpu_service_memory_used_bytes{{{MACHINE}}} "
                              f"* on (machine, group) group_left () {ITS_GROUP})", "{{service}} on GPU {{gpu}}"),
                         prom(f"(fleet_gpu_group_memory_budget_bytes{{{MACHINE}}} > 0) "
                              f"* on (machine, group) group_left () {ITS_GROUP}", "budget of {{group}}")],
                        overrides=[dashed([f"budget of {g.name}" for g in topology.groups
                                           if g.gpu_memory_budget_bytes > 0])]), 12, 8)
    grid.add(logs("Its logs", "The agent's own log lines (Loki), newest first.",
                  [loki(f'{{{MACHINE}, agent="$agent"}}')]), 12, 8)
    grid.add(logs("What the hub says about it", "The hub's log lines naming the agent (state "
                  "changes), newest first.", [loki(f'{{{MACHINE}, source="hub"}} |= "agent $agent "')]), 24, 6)
    return dashboard(links.AGENT, "Agent detail", "One agent: state over time, heartbeats, probes, "
                     "its group and dependencies, GPU memory, logs.", grid.panels,
                     variables=("datasource", "loki", "machine", "group", "agent"), single_agent=True)

