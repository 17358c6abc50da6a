"""SLO: per-group availability, error budget remaining, burn rates.

Everything reads the SLO recording rules of fleetobs/generate/prometheus/recording.py:
the SLI ``machine_group:fleet_agent_up:ratio`` and the error ratio averaged over the
multi-window burn-rate windows (``..._unavailable:ratio_avg<window>``). A burn rate is
that average divided by the error budget (1 - objective); the error budget remaining
over a window is 1 - average error ratio / budget (below 0: spent).
"""

from __future__ import annotations

from typing import Any

from fleetobs.generate import links
from fleetobs.generate.dashboards.document import GROUP, MACHINE, dashboard
from fleetobs.generate.dashboards.panels import Grid, merge_table, prom, stat, steps, table, timeseries
from fleetobs.generate.prometheus import recording

#: Availability objective of every group (the alerts' burn rates use the same budget).
OBJECTIVE = 0.99
BUDGET = 1 - OBJECTIVE
#: The burn-rate alert pairs (long window, short window, threshold), SRE workbook table 5-8.
BURN_PAIRS: tuple[tuple[str, str, float], ...] = (
    ("1h", "5m", 14.4), ("6h", "30m", 6.0), ("1d", "2h", 3.0), ("3d", "6h", 1.0))
BURN_UNIT = "suffix:×"
#: Agents in no group (unknown ones) are no group's SLO.
_SEL = f'{{{MACHINE}, {GROUP}, group!=""}}'


def avg(window: str) -> str:
    name = f"machine_group:fleet_agent_unavailable:ratio_avg{window}"
    assert name in recording.names(), name
    return f"{name}{_SEL}"


def burn(window: str) -> str:
    return f"{avg(window)} / {BUDGET:g}"


def render() -> dict[str, Any]:
    longest = recording.SLO_WINDOWS[-1]
    grid = Grid()
    grid.row("Objective")
    grid.add(stat(f"Availability over {longest}", f"Average fraction of each group's monitored agents "
                  f"that were up over the last {longest} (1 - the SLO error ratio), against the "
                  f"{OBJECTIVE:.0%} objective.", "percentunit",
                  [prom(f"1 - {avg(longest)}", "{{machine}} {{group}}")],
                  thresholds=steps((None, "red"), (OBJECTIVE, "green")), text_mode="value_and_name"), 12, 6)
    grid.add(stat(f"Error budget remaining ({longest})", f"Share of the {BUDGET:.0%} error budget not "
                  f"spent over the last {longest}; below 0 the objective is missed.", "percentunit",
                  [prom(f"1 - {burn(longest)}", "{{machine}} {{group}}")],
                  thresholds=steps((None, "red"), (0, "yellow"), (0.25, "green")),
                  text_mode="value_and_name"), 12, 6)
    grid.add(timeseries("Availability per group", f"The SLI: fraction of each group's monitored "
                        f"agents that are up, against the {OBJECTIVE:.0%} objective (dashed).",
                        "percentunit", [prom(f"machine_group:fleet_agent_up:ratio{_SEL}", "{{machine}} {{group}}")],
                        minimum=0, maximum=1, threshold_line=True,
                        thresholds=steps((None, "red"), (OBJECTIVE, "green"))), 24, 8)
    grid.row("Burn rates")
    for long, short, threshold in BURN_PAIRS:
        grid.add(timeseries(
            f"Burn rate: {long} and {short} windows", f"How fast each group spends its error budget "
            f"(1 = exactly on budget) over {long} and {short}; an alert fires when both are above "
            f"{threshold:g} (dashed).", BURN_UNIT,
            [prom(burn(long), f"{{{{machine}}}} {{{{group}}}} {long}"),
             prom(burn(short), f"{{{{machine}}}} {{{{group}}}} {short}")],
            minimum=0, threshold_line=True, thresholds=steps((None, "green"), (threshold, "red"))), 12, 8)
    windows = recording.SLO_WINDOWS
    grid.add(table("Burn rates now", "Each group's burn rate over every window of the burn-rate "
                   "alerts (1 = on budget).", BURN_UNIT,
                   [prom(f"max by (machine, group) ({burn(w)})", instant=True, table=True) for w in windows],
                   transformations=merge_table(
                       rename={f"Value #{chr(ord('A') + i)}": w for i, w in enumerate(windows)},
                       order=("machine", "group", *windows))), 24, 8)
    return dashboard(links.SLO, "SLO", f"Per-group availability against the {OBJECTIVE:.0%} "
                     "objective, error budget remaining and burn rates (recording rules).",
                     grid.panels, variables=("datasource", "machine", "group"))
