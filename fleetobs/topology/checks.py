"""Consistency checks over a loaded topology (``fleetobs topology check``).

Errors make the topology unusable (duplicates, unknown or cyclic dependencies,
unplaced agents, a budget no card can hold). Warnings are facts an operator must
know but can run with: the ``health_check_port + 1`` HTTP collisions of the real
fleet, budgets over-committing a GPU, startup order against dependencies.

The compose bundles generated from the topology are checked here too (docs/compose.md):
per group, the HTTP-port collisions inside its shared network namespace and whether a
start order can put every owner first; per machine, host ports, mounted files, unread
environment variables and ``depends_on`` order (fleetobs/generate/compose/lint.py).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any, Literal

from fleetobs.topology.model import Agent, Group, Topology

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Finding:
    code: str
    severity: Severity
    message: str
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, **self.data}


@dataclass(frozen=True)
class Report:
    findings: tuple[Finding, ...]

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == "error")

    @property
    def warnings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == "warning")

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_json(self) -> dict[str, Any]:
        return {"errors": [f.to_json() for f in self.errors], "warnings": [f.to_json() for f in self.warnings]}

    def codes(self) -> Counter[str]:
        return Counter(f.code for f in self.findings)


def _gib(n: float) -> str:
    return f"{n:g} GiB"


def check_duplicates(t: Topology) -> list[Finding]:
    counts = Counter(a.key for a in t.agents)
    return [
        Finding("duplicate-agent", "error", f"agent {name} is defined {n} times on {machine}",
                {"machine": machine, "agent": name, "count": n})
        for (machine, name), n in counts.items() if n > 1
    ]


def http_port_clashes(t: Topology) -> dict[tuple[str, str], list[tuple[str, str]]]:
    """Agents whose BaseAgent HTTP port (health_check_port + 1) is another agent's socket
    on the same machine: ``(machine, agent) -> [(other agent, "port" | "health_check_port")]``.

    On a shared host network that port is the other agent's ZeroMQ socket, so nothing
    there can answer HTTP: Prometheus must not scrape it (hub.discovery leaves it out).
    """
    out: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for m in t.machines:
        owners: dict[int, list[tuple[str, str]]] = defaultdict(list)
        agents = t.agents_on(m.name)
        for a in agents:
            owners[a.port].append((a.name, "port"))
            owners[a.health_check_port].append((a.name, "health_check_port"))
        for a in agents:
            clash = [(n, kind) for n, kind in owners.get(a.http_port, []) if n != a.name]
            if clash:
                out[a.key] = clash
    return out


def check_ports(t: Topology) -> list[Finding]:
    out: list[Finding] = []
    clashes = http_port_clashes(t)
    for m in t.machines:
        owners: dict[int, list[tuple[str, str]]] = defaultdict(list)
        for a in t.agents_on(m.name):
            owners[a.port].append((a.name, "port"))
            owners[a.health_check_port].append((a.name, "health_check_port"))
        for port, users in sorted(owners.items()):
            if len(users) > 1:
                who = ", ".join(f"{n}.{kind}" for n, kind in users)
                out.append(Finding("duplicate-port", "error", f"port {port} on {m.name} is used by {who}",
                                   {"machine": m.name, "port": port, "agents": sorted({n for n, _ in users})}))
        for a in t.agents_on(m.name):
            # BaseAgent serves HTTP on health_check_port + 1; on a shared host network that
            # port may be another agent's ZeroMQ socket.
            for other, kind in clashes.get(a.key, []):
                out.append(Finding(
                    "http-port-collision", "warning",
                    f"{a.name} on {m.name} serves HTTP on health_check_port + 1 = {a.http_port}, "
                    f"which is {other}'s {kind} (a ZeroMQ socket): left out of Prometheus "
                    f"discovery (/v1/sd/prometheus)",
                    {"machine": m.name, "agent": a.name, "port": a.http_port, "other": other, "other_port": kind,
                     "prometheus_sd": "excluded"}))
    return out


def check_dependencies(t: Topology) -> list[Finding]:
    out: list[Finding] = []
    graph: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for a in t.agents:
        edges: list[tuple[str, str]] = []
        for d in a.dependencies:
            target = t.resolve_dependency(a, d)
            if target is None:
                out.append(Finding("unknown-dependency", "error",
                                   f"{a.name} ({a.machine}) depends on {d}, which is not in the topology",
                                   {"machine": a.machine, "agent": a.name, "dependency": d}))
            else:
                edges.append(target.key)
        graph[a.key] = edges
    for cycle in _cycles(graph):
        path = " -> ".join(name for _, name in [*cycle, cycle[0]])
        out.append(Finding("dependency-cycle", "error", f"dependency cycle: {path}",
                           {"agents": [name for _, name in cycle]}))
    return out


def _cycles(graph: dict[tuple[str, str], list[tuple[str, str]]]) -> list[list[tuple[str, str]]]:
    """One representative cycle per strongly connected component (Tarjan, iterative)."""
    index: dict[tuple[str, str], int] = {}
    low: dict[tuple[str, str], int] = {}
    stack: list[tuple[str, str]] = []
    on_stack: set[tuple[str, str]] = set()
    found: list[list[tuple[str, str]]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            succ = graph.get(node, [])
            if i < len(succ):
                work.append((node, i + 1))
                nxt = succ[i]
                if nxt not in index:
                    work.append((nxt, 0))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            if low[node] == index[node]:
                comp: list[tuple[str, str]] = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == node:
                        break
                if len(comp) > 1 or node in graph.get(node, []):
                    found.append(_cycle_path(graph, set(comp)))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return found


def _cycle_path(
    graph: dict[tuple[str, str], list[tuple[str, str]]], comp: set[tuple[str, str]]
) -> list[tuple[str, str]]:
    """A real cycle through the component, in dependency order, from its smallest member."""
    start = min(comp)
    parents: dict[tuple[str, str], tuple[str, str]] = {}
    frontier = [start]
    while frontier:  # BFS back to start: the shortest cycle through it
        nxt: list[tuple[str, str]] = []
        for node in frontier:
            for succ in graph.get(node, []):
                if succ == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(parents[path[-1]])
                    return path[::-1]
                if succ in comp and succ not in parents:
                    parents[succ] = node
                    nxt.append(succ)
        frontier = nxt
    return sorted(comp)  # unreachable for a strongly connected component


def check_groups(t: Topology) -> list[Finding]:
    out: list[Finding] = []
    for a in t.agents:
        if a.group is None:
            out.append(Finding("unplaced-agent", "error", f"{a.name} ({a.machine}) is in no container group",
                               {"machine": a.machine, "agent": a.name}))
    for g in t.groups:
        if not t.agents_in(g.name):
            out.append(Finding("empty-group", "warning", f"group {g.name} on {g.machine} has no agents",
                               {"group": g.name}))
    for m in t.machines:
        budgets = [(g.name, g.gpu_memory_budget_gib) for g in t.groups_on(m.name) if g.gpu_memory_budget_gib > 0]
        for name, budget in budgets:
            if budget > m.gpu_memory_gib:
                out.append(Finding(
                    "budget-exceeds-gpu", "error",
                    f"group {name} has a GPU budget of {_gib(budget)}, more than {m.name}'s "
                    f"{_gib(m.gpu_memory_gib)} GPU",
                    {"machine": m.name, "group": name, "budget_gib": budget, "gpu_memory_gib": m.gpu_memory_gib}))
        total = sum(b for _, b in budgets)
        if budgets and total > m.gpu_memory_gib:
            ratio = total / m.gpu_memory_gib if m.gpu_memory_gib else float("inf")
            detail = " + ".join(f"{n} {b:g}" for n, b in budgets)
            out.append(Finding(
                "gpu-overcommit", "warning",
                f"GPU budgets on {m.name} add up to {_gib(total)} on a {_gib(m.gpu_memory_gib)} GPU "
                f"({ratio:.1f}x): {detail}",
                {"machine": m.name, "budget_total_gib": total, "gpu_memory_gib": m.gpu_memory_gib,
                 "ratio": round(ratio, 3)}))
    return out


def check_startup_order(t: Topology) -> list[Finding]:
    out: list[Finding] = []
    seen: set[tuple[str, str]] = set()
    for a in t.agents:
        mine = _group_of(t, a)
        if mine is None:
            continue
        for d in a.dependencies:
            dep = t.resolve_dependency(a, d)
            if dep is None or dep.machine != a.machine:
                continue  # other machines are not ordered by compose
            theirs = _group_of(t, dep)
            if theirs is None or theirs.name == mine.name or theirs.startup_stage <= mine.startup_stage:
                continue
            key = (mine.name, theirs.name)
            detail = f"{a.name} depends on {dep.name}"
            if key in seen:
                continue
            seen.add(key)
            out.append(Finding(
                "startup-order", "warning",
                f"group {mine.name} (stage {mine.startup_stage}) starts before group {theirs.name} "
                f"(stage {theirs.startup_stage}) it depends on: {detail}",
                {"machine": a.machine, "group": mine.name, "depends_on": theirs.name, "agent": a.name,
                 "dependency": dep.name}))
    return out


def _group_of(t: Topology, a: Agent) -> Group | None:
    return t.group_by_name.get(a.group) if a.group else None


def check_group_namespaces(t: Topology) -> list[Finding]:
    """Inside one group container the agents share a network namespace: an agent's HTTP port
    that is another agent's ZeroMQ port goes to whoever binds first, and an agent whose own
    ZeroMQ port is taken hangs. The bundle starts each owner first (grouping.py); say so per
    group, and fail when no order can."""
    from fleetobs.topology.grouping import group_plan

    out: list[Finding] = []
    for g in t.groups:
        plan = group_plan(t, g.name)
        for m in plan.members:
            for w in m.waits:
                out.append(Finding(
                    "group-http-port-collision", "warning",
                    f"in group {g.name}'s network namespace, {m.agent.name}'s HTTP port "
                    f"(health_check_port + 1 = {w.port}) is {w.owner}'s {w.kind}: {w.owner} starts first, "
                    f"{m.agent.name} has no /health and is probed over ZeroMQ",
                    {"machine": g.machine, "group": g.name, "agent": m.agent.name, "port": w.port,
                     "owner": w.owner, "owner_port": w.kind}))
        if plan.cycle:
            out.append(Finding(
                "group-port-order", "error",
                f"group {g.name}: no start order puts every shared port's owner first "
                f"({', '.join(plan.cycle)} own each other's HTTP ports); one of them would hang",
                {"machine": g.machine, "group": g.name, "agents": list(plan.cycle)}))
    return out


def check_compose(t: Topology) -> list[Finding]:
    """The compose bundles rendered from ``t`` (fleetobs/generate/compose/lint.py)."""
    from fleetobs.generate.compose.lint import check_bundles

    try:
        return check_bundles(t)
    except (KeyError, ValueError) as exc:  # a topology the generator cannot render at all
        return [Finding("compose-render-failed", "error", f"cannot render the compose bundles: {exc}")]


CHECKS = (check_duplicates, check_ports, check_dependencies, check_groups, check_startup_order,
          check_group_namespaces, check_compose)


def check_topology(t: Topology) -> Report:
    findings: list[Finding] = []
    for check in CHECKS:
        findings.extend(check(t))
    return Report(tuple(findings))
