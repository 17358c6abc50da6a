"""The observability stack of one machine: its services, their names and ports.

Shared by every generator so the scrape config, the Grafana datasources and the compose
bundle cannot disagree on where a service listens. Inside a machine's compose project
services reach each other by service name (container DNS); another machine reaches them
at its topology ``address`` on the published host port (a bridge network cannot span
two machines).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fleetobs.topology.model import Machine, Topology


@dataclass(frozen=True)
class Service:
    name: str  # compose service name and in-project DNS name
    port: int  # port inside the container, also published on the host

    def local(self) -> str:
        """``host:port`` for a neighbour in the same compose project."""
        return f"{self.name}:{self.port}"


#: Fixed ports of the stack's services (the hub's comes from the topology).
GPU_EXPORTER_PORT = 9400
PROMETHEUS_PORT = 9090
ALERTMANAGER_PORT = 9093
ALERTMANAGER_CLUSTER_PORT = 9094  # gossip between the machines' Alertmanagers
LOKI_PORT = 3100
GRAFANA_PORT = 3000
REDIS_PORT = 6379
NATS_PORT = 4222


@dataclass(frozen=True)
class Stack:
    machine: Machine
    hub: Service
    gpu_exporter: Service
    prometheus: Service
    alertmanager: Service
    loki: Service
    grafana: Service
    redis: Service
    nats: Service

    def remote(self, service: Service) -> str:
        """``address:port`` where another machine reaches ``service`` (published port)."""
        return f"{self.machine.address}:{service.port}"


def stack(machine: Machine) -> Stack:
    return Stack(
        machine=machine,
        hub=Service("hub", machine.hub_port),
        gpu_exporter=Service("gpu-exporter", GPU_EXPORTER_PORT),
        prometheus=Service("prometheus", PROMETHEUS_PORT),
        alertmanager=Service("alertmanager", ALERTMANAGER_PORT),
        loki=Service("loki", LOKI_PORT),
        grafana=Service("grafana", GRAFANA_PORT),
        redis=Service("redis", REDIS_PORT),
        nats=Service("nats", NATS_PORT),
    )


def stacks(topology: Topology) -> dict[str, Stack]:
    """Every machine's stack, by machine name, in topology order."""
    return {m.name: stack(m) for m in topology.machines}


def peers(topology: Topology, machine: str) -> list[Stack]:
    """The other machines' stacks, in topology order."""
    return [s for name, s in stacks(topology).items() if name != machine]
