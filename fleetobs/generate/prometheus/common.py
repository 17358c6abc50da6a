"""What every alert module shares: the configuration in force, scrape job names, and
builders for alerts and their test series."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from fleetobs.generate import links
from fleetobs.generate.prometheus.model import Alert
from fleetobs.generate.stack import stack
from fleetobs.topology.alerting import Alerting, seconds
from fleetobs.topology.model import Topology

#: Scrape job names. Series scraped from the peer hub are relabelled to ``fleet-hub`` (see
#: scrape.py), so both machines' Prometheus hold identical series; only ``up`` tells the
#: local hub (``fleet-hub``) from the peer's (``fleet-hub-peer``).
HUB_JOB = "fleet-hub"
PEER_HUB_JOB = "fleet-hub-peer"
GPU_EXPORTER_JOB = "fleet-gpu-exporter"
AGENTS_JOB = "fleet-agents"
PROMETHEUS_JOB = "prometheus"
ALERTMANAGER_JOB = "alertmanager"

#: Labels a per-agent series carries in Prometheus (from the hub, plus the scrape's).
AGENT_KEY = "machine, group, agent"


@dataclass(frozen=True)
class Ctx:
    topology: Topology
    config: Alerting

    def for_(self, name: str) -> str:
        return self.config.for_of(name)

    def for_s(self, name: str) -> float:
        return seconds(self.config.for_of(name))

    def alert(self, name: str, expr: str, severity: str, summary: str, description: str,
              dashboard: str, variables: Mapping[str, str] | None = None,
              labels: Mapping[str, str] | None = None, for_: str | None = None) -> Alert:
        return Alert(name=name, expr=" ".join(expr.split()), for_=for_ or self.for_(name),
                     severity=severity, summary=summary, description=description,
                     runbook_url=self.config.runbook(name),
                     dashboard_url=self.config.grafana_url + links.dashboard_path(dashboard, variables),
                     labels=dict(labels or {}))

    def fire_at(self, name: str) -> float:
        """When a case whose condition holds from the start checks that ``name`` fires: one
        evaluation (1m in the tests) of lag behind the recording rules, ``for`` rounded up
        to the evaluation grid, and off the grid by 37 s."""
        return 60 + math.ceil(self.for_s(name) / 60) * 60 + 37

    def hub_instance(self, machine: str) -> str:
        """The ``instance`` of a hub's series in every Prometheus (canonical, see scrape.py)."""
        st = stack(self.topology.machine(machine))
        return st.remote(st.hub)

    def exporter_instance(self, machine: str) -> str:
        st = stack(self.topology.machine(machine))
        return st.remote(st.gpu_exporter)

    def gpu_machines(self) -> list[str]:
        return [m.name for m in self.topology.machines if m.gpu_memory_gib > 0]

    def first_machine(self) -> str:
        return self.topology.machines[0].name


#: Template snippets.
WHO = "{{ $labels.agent }} ({{ $labels.group }} on {{ $labels.machine }})"
GROUP = "{{ $labels.group }} on {{ $labels.machine }}"
MACHINE = "{{ $labels.machine }}"
AGENT_VARS = {"machine": "{{ $labels.machine }}", "group": "{{ $labels.group }}",
              "agent": "{{ $labels.agent }}"}
GROUP_VARS = {"machine": "{{ $labels.machine }}", "group": "{{ $labels.group }}"}
MACHINE_VARS = {"machine": "{{ $labels.machine }}"}


#: When a case checks that its alert let go: its series go stale at 21m (``...x20 stale``);
#: rules reading recording rules lag one evaluation (1m in the tests) behind.
GONE = 22 * 60 + 37


def sel(name: str, labels: Mapping[str, str]) -> str:
    """A test input series ``name{k="v",...}``."""
    inner = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return f"{name}{{{inner}}}"


def steps(value: float | str, n: int) -> str:
    """promtool values: ``value`` repeated for ``n`` more 1m steps (``1x30``)."""
    return f"{value}x{n}"
