"""One dashboard document: uid, title, variables, links, panels -> Grafana 11.6 JSON.

Also the PromQL pieces several dashboards share: the variable matchers and the
agent state as one number (so a state timeline can colour it).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from grafanalib import core as g

from fleetobs.generate.dashboards.normalise import normalise_dashboard
from fleetobs.generate.dashboards.panels import STATE_COLOURS, value_map
from fleetobs.generate.dashboards.variables import templating

TAG = "fleetobs"

#: Matchers for the chained variables.
MACHINE = 'machine=~"$machine"'
GROUP = 'group=~"$group"'
AGENT = 'agent=~"$agent"'

#: Agent states as numbers, least to most severe (max() over agents = the worst).
STATE_CODES: dict[str, int] = {"unmonitored": 0, "up": 1, "degraded": 2, "suspect": 3,
                               "missing": 4, "down": 5}
STATE_MAPPING = value_map({str(code): (state, STATE_COLOURS[state])
                           for state, code in STATE_CODES.items()})


def state_code(matchers: str, by: str = "machine, group, agent") -> str:
    """Each agent's state as a number (STATE_CODES): ``fleet_agent_state`` is one-hot, so
    the sum over states of indicator x code is the code of the state that is 1."""
    terms = [f'sum by ({by}) (fleet_agent_state{{{matchers}, state="{state}"}}) * {code}'
             for state, code in STATE_CODES.items() if code]
    return "\n+ ".join(terms)


def dashboard(uid: str, title: str, description: str, panels: Sequence[Any], *,
              variables: Collection[str], single_agent: bool = False) -> dict[str, Any]:
    """The normalised dashboard JSON; a dropdown links to every fleetobs dashboard,
    carrying the time range and the variables."""
    doc = g.Dashboard(
        title=title, uid=uid, description=description, tags=[TAG], timezone="browser",
        editable=False, graphTooltip=g.GRAPH_TOOLTIP_MODE_SHARED_CROSSHAIR, refresh="30s",
        time=g.Time("now-1h", "now"), panels=list(panels),
        templating=templating(variables, single_agent=single_agent),
        links=[g.DashboardLink(title="fleetobs", type="dashboards", tags=[TAG], asDropdown=True,
                               includeVars=True, keepTime=True)],
    ).auto_panel_ids()
    return normalise_dashboard(doc)
