"""Fleet overview: both machines at a glance, what is wrong, where, and why."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fleetobs.generate import links
from fleetobs.generate.dashboards import slo
from fleetobs.generate.dashboards.document import GROUP, MACHINE, STATE_MAPPING, dashboard, state_code
from fleetobs.generate.dashboards.panels import (
    STATE_COLOURS,
    Grid,
    coloured,
    dashboard_link,
    logs,
    loki,
    merge_table,
    prom,
    stat,
    state_colours,
    state_timeline,
    steps,
    table,
    timeseries,
    value_map,
)

if TYPE_CHECKING:
    from fleetobs.topology.model import Topology

NOT_UP = f'(fleet_agent_state{{{MACHINE}, {GROUP}, state!~"up|unmonitored"}} == 1)'
_BY_AGENT = "machine, group, agent"
AGENT_LINK = dashboard_link("Agent detail", links.dashboard_path(links.AGENT, {
    "machine": "${__data.fields.machine}", "group": "${__data.fields.group}",
    "agent": "${__data.fields.agent}"}))
PEER_MAPPING = value_map({"1": ("up", "green"), "0": ("DOWN", "red")})


def render(topology: Topology) -> dict[str, Any]:
    machines = [m.name for m in topology.machines]
    # Series names of "Agents not up per group": the topology's groups, and no group (unknown agents).
    pairs = [(g.machine, g.name) for g in topology.groups] + [(m, "") for m in machines]
    by_group = coloured({c: [f"{m} {g} {state}" for m, g in pairs] for state, c in STATE_COLOURS.items()})
    grid = Grid()
    grid.row("Now")
    grid.add(stat("Agents by state", "Agents of the selected machines and groups in each state "
                  "(fleet_group_agents). Up and degraded agents are alive.", "short",
                  [prom(f"sum by (state) (fleet_group_agents{{{MACHINE}, {GROUP}}})", "{{state}}")],
                  text_mode="value_and_name", overrides=state_colours("{state}")), 10, 5)
    grid.add(stat("Agents not up", "Agents degraded, suspect, missing or down now; the table below "
                  "says which and why.", "short",
                  [prom(f'sum(fleet_group_agents{{{MACHINE}, {GROUP}, state!~"up|unmonitored"}}) or vector(0)')],
                  thresholds=steps((None, "green"), (1, "red")), background=True), 4, 5)
    grid.add(stat("Peer links", "Whether sync with each peer hub works both ways (fleet_peer_up). "
                  "While a link is down the peer's agents show as unknown, not down.", "none",
                  [prom(f"min by (machine, peer) (fleet_peer_up{{{MACHINE}}})", "{{machine}} → {{peer}}")],
                  mappings=[PEER_MAPPING], thresholds=steps((None, "red"), (1, "green")),
                  background=True, text_mode="value_and_name"), 5, 5)
    grid.add(stat("Firing alerts", "Alerts Prometheus is firing now (its ALERTS series).", "short",
                  [prom('count(ALERTS{alertstate="firing"})')], no_value="0",
                  thresholds=steps((None, "green"), (1, "red")), background=True), 5, 5)

    grid.row("Agents by state")
    grid.add(state_timeline(
        "Group state (worst agent)", "Each group's worst agent state over time, per machine: "
        "green up, yellow degraded, orange suspect, red missing, dark red down.",
        [prom(f"max by (machine, group) (\n{state_code(f'{MACHINE}, {GROUP}', _BY_AGENT)}\n)",
              "{{machine}} / {{group}}")], [STATE_MAPPING]), 24, 10)
    grid.add(timeseries("Agents by state per machine", "Agents of each machine in each state, "
                        "stacked (recording rule machine_state:fleet_group_agents:sum).", "short",
                        [prom(f"machine_state:fleet_group_agents:sum{{{MACHINE}}}", "{{machine}} {{state}}")],
                        stack=True, overrides=state_colours("{machine} {state}", machine=machines)), 12, 8)
    grid.add(timeseries("Agents not up per group", "Agents that are not up, by machine, group and "
                        "state; empty when every agent is up.", "short",
                        [prom(f'sum by (machine, group, state) (fleet_group_agents{{{MACHINE}, {GROUP}, '
                              f'state!~"up|unmonitored"}}) > 0', "{{machine}} {{group}} {{state}}")],
                        stack=True, bars=True, overrides=by_group), 12, 8)

    grid.row("What is wrong, and why")
    grid.add(table(
        "Agents not up, and why", "Every agent that is not up: its state (degraded: it says so; "
        "suspect: silent for 2 intervals; down: silent for 3; missing: never heard from since "
        "the hub started), how long since the hub heard from it, and the interval it is judged "
        "by. Click an agent for its detail dashboard.", "s",
        [prom(f"max by ({_BY_AGENT}, state) {NOT_UP}", instant=True, table=True),
         prom(f"max by ({_BY_AGENT}) (fleet_agent_heartbeat_age_seconds{{{MACHINE}, {GROUP}}}) "
              f"and on ({_BY_AGENT}) {NOT_UP}", instant=True, table=True),
         prom(f"max by ({_BY_AGENT}) (fleet_agent_interval_seconds{{{MACHINE}, {GROUP}}}) "
              f"and on ({_BY_AGENT}) {NOT_UP}", instant=True, table=True)],
        transformations=merge_table(hide=("Time", "Value #A"),
                                    rename={"Value #B": "heard from (ago)", "Value #C": "interval"},
                                    order=("machine", "group", "agent", "state")),
        links=[AGENT_LINK]), 16, 9)
    grid.add(table("Unknown agents", "Agents that beat here but the topology does not place on this "
                   "machine: kind unknown (nowhere in the topology) or foreign (on another machine).",
                   "none", [prom(f"max by (machine, agent, kind) (fleet_agent_unknown{{{MACHINE}}})",
                                 instant=True, table=True)],
                   transformations=merge_table(hide=("Time", "Value"))), 8, 9)

    grid.row("Peers, SLO and alerts")
    grid.add(timeseries("Peer link and sync freshness", "Seconds since the last successful sync "
                        "exchange with each peer, and since valid data last arrived from it. "
                        "Above ~8 s the peer's agents turn unknown.", "s",
                        [prom(f"machine_peer:fleet_sync_last_success_age_seconds:max{{{MACHINE}}}",
                              "{{machine}} → {{peer}} last exchange"),
                         prom(f"max by (machine, peer) (fleet_sync_peer_data_age_seconds{{{MACHINE}}})",
                              "{{machine}} ← {{peer}} data age")],
                        thresholds=steps((None, "green"), (8, "red")), threshold_line=True), 8, 8)
    grid.add(timeseries("Group availability vs SLO", f"Fraction of each group's monitored agents "
                        f"that are up (the SLI), against the {slo.OBJECTIVE:.0%} objective (dashed).",
                        "percentunit",
                        [prom(f'machine_group:fleet_agent_up:ratio{{{MACHINE}, {GROUP}, group!=""}}',
                              "{{machine}} {{group}}")],
                        minimum=0, maximum=1, threshold_line=True,
                        thresholds=steps((None, "red"), (slo.OBJECTIVE, "green")),
                        links=[dashboard_link("SLO", links.dashboard_path(links.SLO))]), 16, 8)
    grid.add(table("Firing alerts", "Alerts firing now, with their labels (Prometheus' ALERTS).",
                   "none", [prom('max by (alertname, severity, machine, group, agent) '
                                 '(ALERTS{alertstate="firing"})', instant=True, table=True)],
                   transformations=merge_table(hide=("Time", "Value")), no_value="none firing"), 12, 8)
    grid.add(logs("State changes (hub log)", "The hubs' own log lines about agents changing "
                  "state, newest first (Loki).",
                  [loki(f'{{{MACHINE}, source="hub"}} |= "agent " |= " -> "')]), 12, 8)
    return dashboard(links.OVERVIEW, "Fleet overview",
                     "Both machines at a glance: agents by state, what is wrong and why, peer "
                     "links, availability against the SLO, firing alerts.", grid.panels,
                     variables=("datasource", "loki", "machine", "group"))
