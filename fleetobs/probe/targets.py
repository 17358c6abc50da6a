"""Which agents of a topology are probed, where, and how often."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from fleetobs.probe.cycle import ProbeTarget
from fleetobs.probe.result import Protocol

if TYPE_CHECKING:
    from fleetobs.topology.model import Agent

#: Default cycle: the agents' heartbeat interval, but no slower than this (the real
#: fleet's 30 s default would leave a dead agent unnoticed for minutes).
MAX_DEFAULT_INTERVAL = 15.0

#: Topology ``probe`` values that mean "ask the agent" (push and none are not probed).
PROBED = {"zmq": Protocol.ZMQ, "http": Protocol.HTTP}


def is_probed(agent: Agent) -> bool:
    return agent.probe.value in PROBED


def probe_target(agent: Agent, host: str) -> ProbeTarget:
    """zmq: the health_check_port; http: /health on health_check_port + 1."""
    protocol = PROBED[agent.probe.value]
    port = agent.health_check_port if protocol is Protocol.ZMQ else agent.http_port
    return ProbeTarget(agent.name, agent.machine, protocol, host, port, agent.group)


def default_interval(agents: Sequence[Agent]) -> float:
    return min(*(a.heartbeat_interval_seconds for a in agents), MAX_DEFAULT_INTERVAL)


def auto_concurrency(targets: int, timeout_seconds: float, interval_seconds: float,
                     floor: int = 32, ceiling: int = 1024) -> int:
    """Probes in flight so that a cycle fits its interval even when every agent is
    silent (each silent agent holds a slot for the whole timeout): targets * timeout /
    interval, at least ``floor``, at most ``ceiling`` (file descriptors are finite)."""
    need = -(-int(targets * timeout_seconds * 1000) // int(interval_seconds * 1000))  # ceil
    return max(floor, min(ceiling, need))
