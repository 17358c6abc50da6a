"""Generator of the top-level ``dashboards/`` folder (see fleetobs/generate/__init__.py).

``json/<uid>.json``: the six Grafana dashboards (grafanalib panels, normalised to
Grafana 11.6's schema); ``provisioning/<machine>/``: each machine's datasources and
the dashboards provider. docs/dashboards.md says what is on each dashboard.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from fleetobs.generate import links
from fleetobs.generate.build import readme

if TYPE_CHECKING:
    from fleetobs.topology.model import Topology


def dashboards(topology: Topology) -> dict[str, dict[str, Any]]:
    """Every dashboard's JSON document, by uid (links.DASHBOARD_UIDS order)."""
    from fleetobs.generate.dashboards import agent, gpu, hub, logs, overview, slo

    docs = {links.OVERVIEW: overview.render(topology), links.AGENT: agent.render(topology),
            links.GPU: gpu.render(topology), links.HUB: hub.render(), links.SLO: slo.render(),
            links.LOGS: logs.render()}
    return {uid: docs[uid] for uid in links.DASHBOARD_UIDS}


def _readme(docs: dict[str, dict[str, Any]], machines: list[str]) -> str:
    rows = "\n".join(f"| `json/{uid}.json` | {d['title']} | {d['description']} |" for uid, d in docs.items())
    return readme("dashboards", f"""
Grafana {links.GRAFANA_VERSION} dashboards and provisioning, generated from the topology
(docs/dashboards.md).

| file | dashboard | what |
| --- | --- | --- |
{rows}

`provisioning/<machine>/` ({", ".join(machines)}): `datasources/fleetobs.yaml` (that
machine's Prometheus first and default, the peer's Prometheus, Loki, Alertmanager) and
`dashboards/fleetobs.yaml` (a provider reading `{links.GRAFANA_DASHBOARDS_DIR}`). Mount
`json/` at `{links.GRAFANA_DASHBOARDS_DIR}` and `provisioning/<machine>/` at
`{links.GRAFANA_PROVISIONING_DIR}`.

Preview without Grafana: `fleetobs dashboards preview --prometheus URL -o DIR`.
""")


def render(topology: Topology) -> dict[str, str]:
    """Files of ``dashboards/``, relative to it."""
    from fleetobs.generate.dashboards import provisioning

    docs = dashboards(topology)
    out = {f"json/{uid}.json": json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
           for uid, doc in docs.items()}
    out.update(provisioning.render(topology))
    out["README.md"] = _readme(docs, [m.name for m in topology.machines])
    return out
