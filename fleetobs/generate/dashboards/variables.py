"""The template variables, chained: datasource -> machine -> group -> agent (and loki).

Every dashboard defines all five (links.VARIABLES), hiding the ones it does not use, so
links that carry variables (``includeVars``, alerts' ``dashboard_url``) keep them from
one dashboard to the next. Values come from ``fleet_agent_state``: every agent the hub
knows has it (``fleet_agent_up`` is absent for ``probe: none`` agents).

"All" values are regexes: ``machine`` and ``agent`` use ``.+`` (a Loki stream selector
needs one matcher that cannot match the empty string), ``group`` uses ``.*`` (the GPU
exporter's ``host`` service has an empty group).
"""

from __future__ import annotations

from collections.abc import Collection

from grafanalib import core as g

from fleetobs.generate import links
from fleetobs.generate.dashboards.panels import PROMETHEUS

SERIES = "fleet_agent_state"
SHOW, HIDE = 0, 2
#: Value Grafana stores for "All".
ALL = "$__all"
ALL_VALUES: dict[str, str] = {"machine": ".+", "group": ".*", "agent": ".+"}

QUERIES: dict[str, str] = {
    "machine": f"label_values({SERIES}, machine)",
    "group": f'label_values({SERIES}{{machine=~"$machine"}}, group)',
    "agent": f'label_values({SERIES}{{machine=~"$machine", group=~"$group"}}, agent)',
}


def _datasource(name: str, label: str, plugin: str, shown: bool) -> g.Template:
    return g.Template(name=name, label=label, type="datasource", query=plugin,
                      hide=SHOW if shown else HIDE, refresh=1)


def _query(name: str, shown: bool, *, include_all: bool) -> g.Template:
    return g.Template(
        name=name, label=name, type="query", query=QUERIES[name], dataSource=PROMETHEUS,
        includeAll=include_all, multi=include_all,
        allValue=ALL_VALUES[name] if include_all else None,
        default=ALL if include_all else None, refresh=2, sort=1, hide=SHOW if shown else HIDE)


def templating(used: Collection[str], *, single_agent: bool = False) -> g.Templating:
    """All of links.VARIABLES, in order; those not in ``used`` hidden. ``single_agent``:
    the agent variable picks exactly one agent (the agent detail dashboard)."""
    unknown = set(used) - set(links.VARIABLES)
    if unknown:
        raise ValueError(f"unknown variables {sorted(unknown)}")
    made = {
        "datasource": _datasource("datasource", "Prometheus", "prometheus", "datasource" in used),
        "loki": _datasource("loki", "Loki", "loki", "loki" in used),
        "machine": _query("machine", "machine" in used, include_all=True),
        "group": _query("group", "group" in used, include_all=True),
        "agent": _query("agent", "agent" in used, include_all=not single_agent),
    }
    return g.Templating(list=[made[v] for v in links.VARIABLES])
