"""Names that tie the generated pieces together: dashboard uids, datasource uids,
Grafana's provisioning paths, and links into dashboards (alerts' ``dashboard_url``).

Alert rules link to dashboards and dashboards link to each other; both take the uids and
variable names from here, so a link cannot point at a dashboard that does not exist.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote

#: Fixed dashboard uids (Grafana URLs are /d/<uid>/<slug>).
OVERVIEW = "fleet-overview"
AGENT = "fleet-agent"
GPU = "fleet-gpu"
HUB = "fleet-hub"
SLO = "fleet-slo"
LOGS = "fleet-logs"
DASHBOARD_UIDS: tuple[str, ...] = (OVERVIEW, AGENT, GPU, HUB, SLO, LOGS)

#: Template variables, chained in this order.
VARIABLES: tuple[str, ...] = ("datasource", "loki", "machine", "group", "agent")

#: Grafana paths inside its container (the compose bundle mounts the generated files there).
GRAFANA_PROVISIONING_DIR = "/etc/grafana/provisioning"
GRAFANA_DASHBOARDS_DIR = "/var/lib/grafana/dashboards/fleetobs"
#: The Grafana version the compose bundle runs and the dashboards are validated for.
GRAFANA_VERSION = "11.6.0"


def prometheus_uid(machine: str) -> str:
    return f"prometheus-{machine}"


def loki_uid(machine: str) -> str:
    return f"loki-{machine}"


def alertmanager_uid(machine: str) -> str:
    return f"alertmanager-{machine}"


def dashboard_path(uid: str, variables: Mapping[str, str] | None = None) -> str:
    """``/d/<uid>?var-x=...``: a link relative to Grafana's root. Values may be alert
    templates such as ``{{ $labels.agent }}`` or Grafana data link variables such as
    ``${__data.fields.agent}``; those are kept readable, not escaped."""
    query = "&".join(
        f"var-{k}={v if v.startswith(('{{', '${')) else quote(v, safe='')}" for k, v in (variables or {}).items())
    return f"/d/{uid}" + (f"?{query}" if query else "")
