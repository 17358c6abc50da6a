"""One container group's agents in one network namespace: who owns which port, who starts first.

Inside a group container every agent shares one localhost. The real BaseAgent serves HTTP
on ``health_check_port + 1``, which can be another agent's ZeroMQ port; whoever binds first
wins, and an agent whose own ZeroMQ port is taken hangs in its constructor for good. So the
owner of such a port must start (and bind it) before the agent whose HTTP port it is; that
agent then has no ``/health`` and is probed over ZeroMQ only.

Shared by the compose generator (the group manifest and start order it renders), the
generation-time checks and the group simulator, so they cannot disagree.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

from fleetobs.topology.model import Agent, Group, ProbeKind, Topology


@dataclass(frozen=True)
class PortWait:
    """Before its agent starts, ``owner`` must have bound ``port`` (its ``kind`` socket)."""

    owner: str
    port: int
    kind: str  # "port" (main, bound after the constructor) | "health_check_port" (~1 s)


@dataclass(frozen=True)
class Member:
    agent: Agent
    waits: tuple[PortWait, ...] = ()  # owners of this agent's HTTP port

    @property
    def http_served(self) -> bool:
        """False when the HTTP port is another agent's ZeroMQ port (the owner wins)."""
        return not self.waits


@dataclass(frozen=True)
class GroupPlan:
    group: Group
    members: tuple[Member, ...]  # in start order
    cycle: tuple[str, ...] = ()  # agents whose port ownership no start order can satisfy

    @property
    def agents(self) -> tuple[Agent, ...]:
        return tuple(m.agent for m in self.members)

    def member(self, name: str) -> Member:
        for m in self.members:
            if m.agent.name == name:
                return m
        raise KeyError(f"{name} is not in group {self.group.name}")


def is_hub_agent(agent: Agent, topology: Topology) -> bool:
    """The fleetobs hub listed as an agent (the real ObservabilityHub's name and port): it runs
    as the stack's ``hub`` service, not inside its group container."""
    return agent.probe is ProbeKind.PUSH and agent.port == topology.machine(agent.machine).hub_port


def group_agents(topology: Topology, group: str) -> tuple[Agent, ...]:
    """The agents the group container runs (the hub agent excluded), in topology order."""
    return tuple(a for a in topology.agents_in(group) if not is_hub_agent(a, topology))


def group_plan(topology: Topology, group: str) -> GroupPlan:
    """The group's agents in a start order that puts every port's owner first, dependencies
    inside the group next, topology order last."""
    g = topology.group_by_name[group]
    agents = group_agents(topology, group)
    owners: dict[int, tuple[Agent, str]] = {}
    for a in agents:
        owners.setdefault(a.port, (a, "port"))
        owners.setdefault(a.health_check_port, (a, "health_check_port"))
    waits: dict[str, tuple[PortWait, ...]] = {}
    for a in agents:
        owner = owners.get(a.http_port)
        if owner is not None and owner[0].name != a.name:
            waits[a.name] = (PortWait(owner[0].name, a.http_port, owner[1]),)
    names = [a.name for a in agents]
    rank = {n: i for i, n in enumerate(_dependency_order(topology, agents))}
    # Hard edges: owner -> the agent whose HTTP port it owns. Soft: rank.
    after: dict[str, set[str]] = {n: set() for n in names}
    for name, ws in waits.items():
        for w in ws:
            after[w.owner].add(name)
    order, cycle = _kahn(names, after, rank)
    by_name = {a.name: a for a in agents}
    members = tuple(Member(by_name[n], waits.get(n, ())) for n in order)
    return GroupPlan(g, members, tuple(cycle))


def _dependency_order(topology: Topology, agents: tuple[Agent, ...]) -> list[str]:
    """Agents with their in-group dependencies first (stable; cycles broken by topology order)."""
    inside = {a.name for a in agents}
    deps = {a.name: {d for d in a.dependencies if d in inside and
                     (r := topology.resolve_dependency(a, d)) is not None and r.group == a.group}
            for a in agents}
    rank = {a.name: i for i, a in enumerate(agents)}
    dependents: dict[str, set[str]] = {a.name: set() for a in agents}
    for n, ds in deps.items():
        for d in ds:
            dependents[d].add(n)
    order, rest = _kahn([a.name for a in agents], dependents, rank)
    return order + [n for n in rest if n not in order]


def _kahn(names: list[str], after: dict[str, set[str]], rank: dict[str, int]) -> tuple[list[str], list[str]]:
    """Topological order (``after[x]``: nodes that must come after x), lowest rank first.
    Returns (order, nodes left in cycles); nodes in cycles are appended in rank order."""
    indegree = dict.fromkeys(names, 0)
    for succ in after.values():
        for s in succ:
            indegree[s] += 1
    ready = [(rank[n], n) for n in names if indegree[n] == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        _, n = heapq.heappop(ready)
        order.append(n)
        for s in after[n]:
            indegree[s] -= 1
            if indegree[s] == 0:
                heapq.heappush(ready, (rank[s], s))
    left = sorted((n for n in names if n not in set(order)), key=rank.__getitem__)
    return order + left, left
