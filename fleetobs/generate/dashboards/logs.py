"""Logs: volume and error lines per machine, group and agent (Loki), and the shippers'
own counts (Prometheus).

Streams carry the labels ``machine``, ``group``, ``agent``, ``source`` (docs/logs.md);
the line is JSON with ``level``, so errors are ``| json | level=~"error|critical"``.
"""

from __future__ import annotations

from typing import Any

from fleetobs.generate import links
from fleetobs.generate.dashboards.document import AGENT, GROUP, MACHINE, dashboard
from fleetobs.generate.dashboards.hub import LINES, rate
from fleetobs.generate.dashboards.panels import Grid, logs, loki, prom, timeseries

STREAMS = f"{{{MACHINE}, {GROUP}, {AGENT}}}"
ERRORS = f'{STREAMS} | json | level=~"error|critical"'


def _volume(by: str, selection: str = STREAMS) -> str:
    return f"sum by ({by}) (count_over_time({selection} [$__auto]))"


def render() -> dict[str, Any]:
    grid = Grid()
    grid.row("Volume")
    grid.add(timeseries("Log lines by machine", "Lines stored in Loki per interval, by machine.",
                        "short", [loki(_volume("machine"), "{{machine}}")], bars=True, stack=True), 12, 8)
    grid.add(timeseries("Log lines by group", "Lines stored in Loki per interval, by container group.",
                        "short", [loki(_volume("machine, group"), "{{machine}} {{group}}")],
                        bars=True, stack=True), 12, 8)
    grid.add(timeseries("Error lines by agent", "Lines at level error or critical per interval, by "
                        "agent.", "short", [loki(_volume("machine, agent", ERRORS), "{{machine}} {{agent}}")],
                        bars=True, stack=True), 12, 8)
    grid.add(timeseries("Shipped and dropped (shippers)", "What the hubs' log shippers sent to Loki "
                        "and dropped, per second (Prometheus; a drop here is a gap in the panels "
                        "around it).", LINES,
                        [prom(rate("fleet_log_lines_sent_total", "machine"), "{{machine}} sent"),
                         prom(rate("fleet_log_lines_dropped_total", "machine, reason"),
                              "{{machine}} dropped: {{reason}}")]), 12, 8)
    grid.row("Lines")
    grid.add(logs("Error lines", "Lines at level error or critical, newest first.", [loki(ERRORS)]), 24, 8)
    grid.add(logs("All lines", "Every line of the selected machines, groups and agents, newest first.",
                  [loki(STREAMS)]), 24, 12)
    return dashboard(links.LOGS, "Logs", "Log volume and error lines per machine, group and agent "
                     "(Loki), and what the shippers sent and dropped.", grid.panels,
                     variables=("datasource", "loki", "machine", "group", "agent"))
