"""Where to reach an agent, by SERVICE_DISCOVERY_MODE (replaces the real system's hardcoded IPs).

* ``container_dns``: an agent of this machine is reached by its group's compose service
  name (``language-stack-gpu``); compose DNS does not cross machines, so an agent of
  another machine is reached at that machine's address from the topology.
* ``host``: bare processes on one machine: this machine's agents at 127.0.0.1, others at
  their machine's address.
* ``static``: always the machine address from the topology.
"""

from __future__ import annotations

from dataclasses import dataclass

from fleetobs.settings import DiscoveryMode
from fleetobs.topology.checks import http_port_clashes
from fleetobs.topology.model import Agent, Topology
from hub.registry import HUB_AGENT

LOOPBACK = "127.0.0.1"


def address_of(agent: Agent, topology: Topology, machine: str, mode: DiscoveryMode) -> str:
    """Host (no scheme, no port) where ``agent`` is reached from ``machine``."""
    remote = topology.machine(agent.machine).address
    if agent.machine != machine or mode is DiscoveryMode.STATIC:
        return remote
    if mode is DiscoveryMode.HOST:
        return LOOPBACK
    if agent.group is None:
        return remote
    return topology.group_by_name[agent.group].service_name


def metrics_port(agent: Agent) -> int:
    """Where the agent serves /metrics: BaseAgent's HTTP port; the hub serves on its own."""
    return agent.port if agent.name == HUB_AGENT else agent.http_port


@dataclass(frozen=True, slots=True)
class Location:
    agent: str
    machine: str
    group: str | None
    mode: DiscoveryMode
    host: str
    port: int
    health_check_port: int
    metrics_port: int

    @property
    def zmq(self) -> str:
        return f"tcp://{self.host}:{self.port}"

    @property
    def health(self) -> str:
        return f"tcp://{self.host}:{self.health_check_port}"

    @property
    def metrics(self) -> str:
        return f"http://{self.host}:{self.metrics_port}/metrics"


def locate(agent: Agent, topology: Topology, machine: str, mode: DiscoveryMode) -> Location:
    return Location(agent=agent.name, machine=agent.machine, group=agent.group, mode=mode,
                    host=address_of(agent, topology, machine, mode), port=agent.port,
                    health_check_port=agent.health_check_port, metrics_port=metrics_port(agent))


def not_http(topology: Topology, only_machine: str | None = None) -> list[dict[str, object]]:
    """Agents whose /metrics port cannot be HTTP, with why (left out of service discovery).

    BaseAgent serves /metrics on health_check_port + 1; where that port is another
    agent's ZeroMQ socket (the real fleet: 22 on MainPC, 10 on PC2) a scrape would talk
    HTTP to ZeroMQ. The hub serves its own /metrics on its port and is never left out.
    """
    out: list[dict[str, object]] = []
    for (machine, name), clash in sorted(http_port_clashes(topology).items()):
        agent = topology.agent_by_key[(machine, name)]
        if name == HUB_AGENT or (only_machine is not None and machine != only_machine):
            continue
        who = ", ".join(f"{other}'s {kind}" for other, kind in clash)
        out.append({"agent": name, "machine": machine, "group": agent.group or "",
                    "port": agent.http_port,
                    "reason": f"health_check_port + 1 = {agent.http_port} is {who} "
                              f"(a ZeroMQ socket, not HTTP)"})
    return out


def prometheus_targets(topology: Topology, machine: str, mode: DiscoveryMode,
                       only_machine: str | None = None) -> list[dict[str, object]]:
    """Prometheus ``http_sd_configs`` document: one target group per agent that can
    serve HTTP /metrics (:func:`not_http` lists the others)."""
    excluded = {(str(e["machine"]), str(e["agent"])) for e in not_http(topology, only_machine)}
    out: list[dict[str, object]] = []
    for agent in topology.agents:
        if only_machine is not None and agent.machine != only_machine:
            continue
        if agent.key in excluded:
            continue
        host = address_of(agent, topology, machine, mode)
        out.append({
            "targets": [f"{host}:{metrics_port(agent)}"],
            "labels": {"machine": agent.machine, "group": agent.group or "",
                       "agent": agent.name, "__metrics_path__": "/metrics"},
        })
    return out
