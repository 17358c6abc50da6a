"""Grafana provisioning per machine: its datasources and the dashboards provider.

The compose bundle mounts ``dashboards/provisioning/<machine>`` at Grafana's provisioning
folder and ``dashboards/json`` at the provider's path (fleetobs/generate/links.py).
Datasources, in order: this machine's Prometheus (the default), every peer's
Prometheus, this machine's Loki and Alertmanager. Uids are fixed (links.py), so the
dashboards' ``${datasource}`` / ``${loki}`` and the alerts' links resolve on either
machine. Local services are reached by compose service name, a peer's at its
topology address on the published port (fleetobs/generate/stack.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import yaml

from fleetobs.generate import links
from fleetobs.generate.build import HEADER
from fleetobs.generate.stack import Stack, peers, stacks

if TYPE_CHECKING:
    from fleetobs.topology.model import Topology

PROVIDER = "fleetobs"


def _prometheus(s: Stack, url: str, default: bool) -> dict[str, Any]:
    m = s.machine.name
    return {
        "name": f"Prometheus ({m})", "type": "prometheus", "uid": links.prometheus_uid(m),
        "access": "proxy", "url": url, "isDefault": default, "editable": False,
        "jsonData": {"httpMethod": "POST", "alertmanagerUid": links.alertmanager_uid(m) if default else None,
                     "prometheusType": "Prometheus"},
    }


def datasources(topology: Topology, machine: str) -> dict[str, Any]:
    me = stacks(topology)[machine]
    listed = [_prometheus(me, f"http://{me.prometheus.local()}", True)]
    listed += [_prometheus(p, f"http://{p.remote(p.prometheus)}", False) for p in peers(topology, machine)]
    listed += [
        {"name": f"Loki ({machine})", "type": "loki", "uid": links.loki_uid(machine), "access": "proxy",
         "url": f"http://{me.loki.local()}", "isDefault": False, "editable": False,
         "jsonData": {"maxLines": 1000}},
        {"name": f"Alertmanager ({machine})", "type": "alertmanager", "uid": links.alertmanager_uid(machine),
         "access": "proxy", "url": f"http://{me.alertmanager.local()}", "isDefault": False, "editable": False,
         "jsonData": {"implementation": "prometheus", "handleGrafanaManagedAlerts": False}},
    ]
    for ds in listed:  # no nulls in the files Grafana reads
        ds["jsonData"] = {k: v for k, v in ds["jsonData"].items() if v is not None}
    # prune: datasources provisioned earlier but no longer listed are removed.
    return {"apiVersion": 1, "prune": True, "datasources": listed}


def provider() -> dict[str, Any]:
    return {"apiVersion": 1, "providers": [{
        "name": PROVIDER, "orgId": 1, "folder": "fleetobs", "type": "file",
        "disableDeletion": True, "allowUiUpdates": False, "updateIntervalSeconds": 30,
        "options": {"path": links.GRAFANA_DASHBOARDS_DIR, "foldersFromFilesStructure": False},
    }]}


def _yaml(doc: dict[str, Any]) -> str:
    return f"# {HEADER}\n" + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)


def render(topology: Topology) -> dict[str, str]:
    """``provisioning/<machine>/{datasources,dashboards}/fleetobs.yaml`` for every machine."""
    out: dict[str, str] = {}
    for machine in stacks(topology):
        out[f"provisioning/{machine}/datasources/{PROVIDER}.yaml"] = _yaml(datasources(topology, machine))
        out[f"provisioning/{machine}/dashboards/{PROVIDER}.yaml"] = _yaml(provider())
    return out
