"""Many simulated agents in one event loop, built from a topology."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import zmq
import zmq.asyncio

from fleetobs.simulator.agent import SimAgentSpec, SimulatedAgent
from fleetobs.simulator.behaviour import Behaviour

if TYPE_CHECKING:
    from fleetobs.agent.client import HeartbeatClient
    from fleetobs.topology.model import Topology


@dataclass(frozen=True)
class PortPlan:
    """Where agents listen: the topology's ports shifted by ``offset``, or (``ephemeral``)
    any free ports, reported back through :meth:`SimulatedFleet.topology`."""

    offset: int = 0
    ephemeral: bool = False


@dataclass
class FleetReport:
    started: list[str] = field(default_factory=list)
    down: list[str] = field(default_factory=list)  # behaviour "down": nothing bound, by design
    failed: dict[str, str] = field(default_factory=dict)  # name -> why its ports could not be bound
    http_skipped: list[str] = field(default_factory=list)  # health_check_port + 1 was taken


def specs_from_topology(topology: Topology, machines: Sequence[str],
                        behaviours: Mapping[str, Behaviour], ports: PortPlan,
                        limit: int | None = None, slow_seconds: float = 0.5,
                        include_push: bool = False) -> list[SimAgentSpec]:
    """Specs for the agents of ``machines`` (probed ones only unless ``include_push``).

    ``behaviours`` is keyed by agent name; missing names answer ok.
    """
    from fleetobs.topology.model import ProbeKind

    out: list[SimAgentSpec] = []
    for machine in machines:
        for a in topology.agents_on(machine):
            if a.probe in (ProbeKind.NONE,) or (a.probe is ProbeKind.PUSH and not include_push):
                continue
            port = 0 if ports.ephemeral else a.port + ports.offset
            hc = 0 if ports.ephemeral else a.health_check_port + ports.offset
            out.append(SimAgentSpec(a.name, a.machine, a.group, port, hc,
                                    behaviours.get(a.name, Behaviour.OK), slow_seconds=slow_seconds))
    return out[:limit] if limit is not None else out


def synthetic_specs(count: int, behaviours: Mapping[str, Behaviour], machine: str = "sim",
                    slow_seconds: float = 0.5) -> list[SimAgentSpec]:
    """``count`` agents named sim-0000... on ephemeral ports (for loads beyond the real fleet)."""
    return [SimAgentSpec(f"sim-{i:04d}", machine, None, 0, 0,
                         behaviours.get(f"sim-{i:04d}", Behaviour.OK), slow_seconds=slow_seconds)
            for i in range(count)]


class SimulatedFleet:
    """Start and stop many :class:`SimulatedAgent` s sharing one ZeroMQ context."""

    def __init__(self, specs: Iterable[SimAgentSpec], host: str = "127.0.0.1", http: bool = True) -> None:
        self.specs = list(specs)
        self.host = host
        self.http = http
        self.agents: dict[tuple[str, str], SimulatedAgent] = {}
        self._context: zmq.asyncio.Context | None = None
        self.report = FleetReport()
        self._pushers: list[HeartbeatClient] = []

    async def start(self) -> FleetReport:
        """Bind every agent; an agent whose ports are taken is reported, not fatal."""
        self._context = zmq.asyncio.Context()
        # Two REP sockets per agent; libzmq's default cap (1023) would stop at ~500 agents.
        self._context.set(zmq.MAX_SOCKETS, max(1024, 2 * len(self.specs) + 64))
        report = FleetReport()
        fixed: list[SimulatedAgent] = []
        for spec in self.specs:
            agent = SimulatedAgent(spec, self._context, self.host)
            self.agents[(spec.machine, spec.name)] = agent
            if spec.behaviour is Behaviour.DOWN:
                report.down.append(spec.name)
                continue
            # Fixed ports: every ZeroMQ socket first, HTTP after, so a +1 collision costs
            # the HTTP server (as in the real fleet), never another agent's health socket.
            try:
                await agent.start(http=self.http and not spec.health_check_port)
            except OSError as exc:
                report.failed[spec.name] = str(exc)
                await agent.stop()
                continue
            report.started.append(spec.name)
            if spec.health_check_port:
                fixed.append(agent)
        if self.http:
            for agent in fixed:
                await agent.serve_http()
            report.http_skipped = [a.spec.name for a in self.agents.values()
                                   if a.spec.name in report.started and not a.http_served]
        return report

    def agent(self, name: str, machine: str | None = None) -> SimulatedAgent:
        for (m, n), agent in self.agents.items():
            if n == name and (machine is None or m == machine):
                return agent
        raise KeyError(f"no simulated agent {name!r}")

    def set_behaviour(self, name: str, behaviour: Behaviour, machine: str | None = None) -> None:
        """Change how a running agent answers (``down`` cannot be toggled at runtime)."""
        self.agent(name, machine).behaviour = behaviour

    def topology(self, base: Topology) -> Topology:
        """``base`` with every simulated agent's ports replaced by the ports it bound, so a
        hub loading it probes the simulator. Agents "down" in an ephemeral plan get ports
        that were free a moment ago (so a probe of them is refused, not answered by
        whatever owns their real port)."""
        agents = []
        for a in base.agents:
            data = a.model_dump()
            sim = self.agents.get(a.key)
            if sim is not None and sim.health_check_port:
                data.update(port=sim.port, health_check_port=sim.health_check_port)
            elif sim is not None and not sim.spec.health_check_port:
                data.update(port=_free_port(self.host), health_check_port=_free_port(self.host))
            agents.append(data)
        # Validated afresh: a copy would carry the base's cached lookups.
        return type(base).model_validate({**base.model_dump(), "agents": agents})

    def start_push(self, hub_url: str, interval_seconds: float, token: str | None = None) -> int:
        """Push mode: each agent sends heartbeats (the real agent client) saying what its
        behaviour says; silent and down agents send nothing. Returns how many push."""
        from fleetobs.agent.client import HeartbeatClient

        for spec in self.specs:
            status = spec.behaviour.expected_status
            if status is None:
                continue
            client = HeartbeatClient(spec.name, hub_url=hub_url, interval_seconds=interval_seconds,
                                     environ={}, token=token, container=spec.group)
            if status != "ok":
                client.set_status(status, _PUSH_REASONS.get(spec.behaviour), send_now=False)
            self._pushers.append(client.start())
        return len(self._pushers)

    async def __aenter__(self) -> SimulatedFleet:
        self.report = await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def stop(self) -> None:
        """Stop every agent and the context. Idempotent."""
        pushers, self._pushers = self._pushers, []
        if pushers:
            await asyncio.gather(*(asyncio.to_thread(p.close, 1.0) for p in pushers))
        await asyncio.gather(*(a.stop() for a in self.agents.values()))
        if self._context is not None:
            self._context.destroy(linger=0)
            self._context = None


def with_behaviour(spec: SimAgentSpec, behaviour: Behaviour) -> SimAgentSpec:
    return replace(spec, behaviour=behaviour)


_PUSH_REASONS = {Behaviour.DEGRADED: "health_checks.ready_signal=false",
                 Behaviour.ERROR: "simulated failure: model not loaded",
                 Behaviour.GARBAGE: "simulated: garbage health reply"}


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port
