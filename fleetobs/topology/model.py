"""Typed, immutable models of the fleet topology (the single source of truth).

The YAML schema is documented in docs/topology.md. Models are frozen pydantic
models so every consumer (hub, exporter, rule and dashboard generators) reads the
same validated, hashable description and none can mutate it behind the others' back.

Agent identity is (machine, name): the real fleet runs one ``ObservabilityHub`` per
machine under the same name, so names are unique per machine, not fleet-wide.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from enum import StrEnum
from functools import cached_property
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from fleetobs.topology.alerting import Alerting

GIB = 1024**3

#: Names of agents, groups and machines: what is safe as a label value, a path
#: segment and a compose service name (after ``_`` -> ``-``). The first character is
#: a letter, digit or ``_``: ``.``, ``..`` and ``-x`` are path segments and options.
NAME_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$"
NAME_RE = re.compile(NAME_PATTERN)

Name = Annotated[str, Field(pattern=NAME_PATTERN)]
Port = Annotated[int, Field(ge=1, le=65535)]


class ProbeKind(StrEnum):
    """How the hub watches an agent."""

    PUSH = "push"  # the agent (or a sidecar) sends heartbeats
    ZMQ = "zmq"  # REQ to health_check_port: the real BaseAgent default
    HTTP = "http"  # GET /health on health_check_port + 1
    NONE = "none"  # listed, never judged


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class Machine(_Frozen):
    name: Name
    gpu_model: str | None = None
    gpu_memory_gib: float = Field(default=0, ge=0, description="0 when the machine has no GPU")
    hub_port: Port
    address: str = Field(min_length=1, description="host name or IP other machines use")

    @property
    def gpu_memory_bytes(self) -> int:
        return int(self.gpu_memory_gib * GIB)


class Group(_Frozen):
    name: Name
    machine: Name
    description: str = ""
    service: Name | None = Field(
        default=None, description="compose service name; default: name with '_' -> '-'"
    )
    gpu_memory_budget_gib: float = Field(default=0, ge=0)
    memory_limit_gib: float | None = Field(default=None, gt=0)
    cpu_limit: float | None = Field(default=None, gt=0)
    startup_stage: int = Field(default=1, ge=1, description="1 starts first")

    @property
    def service_name(self) -> str:
        return self.service or self.name.replace("_", "-").lower()

    @property
    def gpu_memory_budget_bytes(self) -> int:
        return int(self.gpu_memory_budget_gib * GIB)


class Agent(_Frozen):
    name: Name
    machine: Name
    group: Name | None = None
    port: Port
    health_check_port: Port
    required: bool = True
    dependencies: tuple[Name, ...] = ()
    heartbeat_interval_seconds: float = Field(default=30.0, gt=0, le=3600)
    probe: ProbeKind = ProbeKind.ZMQ
    note: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return (self.machine, self.name)

    @property
    def http_port(self) -> int:
        """The real BaseAgent's HTTP server (/health, /metrics): health_check_port + 1."""
        return self.health_check_port + 1


class Defaults(_Frozen):
    heartbeat_interval_seconds: float = Field(default=30.0, gt=0, le=3600)
    probe: ProbeKind = ProbeKind.ZMQ
    required: bool = True


class Topology(_Frozen):
    """The whole fleet. Cross-references (machine/group names) are checked here;
    softer consistency rules (ports, cycles, budgets) live in ``checks``."""

    version: int = Field(default=1, ge=1, le=1)
    defaults: Defaults = Defaults()
    machines: tuple[Machine, ...]
    groups: tuple[Group, ...] = ()
    agents: tuple[Agent, ...] = ()
    #: Rules, alerts, SLOs and Alertmanager knobs (fleetobs/topology/alerting.py).
    alerting: Alerting = Alerting()

    @model_validator(mode="before")
    @classmethod
    def _apply_defaults(cls, data: Any) -> Any:
        """Agents omit fields the document's ``defaults`` section sets."""
        if not isinstance(data, dict):
            return data
        defaults = data.get("defaults") or {}
        agents = data.get("agents")
        if not isinstance(defaults, dict) or not isinstance(agents, list):
            return data
        merged = [
            {**{k: v for k, v in defaults.items() if k in _AGENT_DEFAULTABLE}, **a}
            if isinstance(a, dict)
            else a
            for a in agents
        ]
        return {**data, "agents": merged}

    @model_validator(mode="after")
    def _references(self) -> Topology:
        machines = {m.name for m in self.machines}
        if len(machines) != len(self.machines):
            raise ValueError(f"machine names must be unique: {_dupes(m.name for m in self.machines)}")
        groups = {g.name for g in self.groups}
        if len(groups) != len(self.groups):
            raise ValueError(f"group names must be unique: {_dupes(g.name for g in self.groups)}")
        for i, g in enumerate(self.groups):
            if g.machine not in machines:
                raise ValueError(f"groups[{i}] ({g.name}): unknown machine {g.machine!r}")
        by_group = {g.name: g for g in self.groups}
        for i, a in enumerate(self.agents):
            if a.machine not in machines:
                raise ValueError(f"agents[{i}] ({a.name}): unknown machine {a.machine!r}")
            if a.group is not None:
                group = by_group.get(a.group)
                if group is None:
                    raise ValueError(f"agents[{i}] ({a.name}): unknown group {a.group!r}")
                if group.machine != a.machine:
                    raise ValueError(
                        f"agents[{i}] ({a.name}): group {a.group!r} is on machine "
                        f"{group.machine!r}, the agent on {a.machine!r}"
                    )
        unknown_slo = sorted(set(self.alerting.slo.groups) - groups)
        if unknown_slo:
            raise ValueError(f"alerting.slo.groups: unknown group(s) {', '.join(unknown_slo)}")
        return self

    # Lookups are cached: the models are frozen, so the indexes cannot go stale.
    @cached_property
    def machine_by_name(self) -> dict[str, Machine]:
        return {m.name: m for m in self.machines}

    @cached_property
    def group_by_name(self) -> dict[str, Group]:
        return {g.name: g for g in self.groups}

    @cached_property
    def agent_by_key(self) -> dict[tuple[str, str], Agent]:
        # Duplicates are reported by checks; the last one wins here.
        return {a.key: a for a in self.agents}

    def machine(self, name: str) -> Machine:
        try:
            return self.machine_by_name[name]
        except KeyError:
            known = ", ".join(sorted(self.machine_by_name))
            raise KeyError(f"unknown machine {name!r} (known: {known})") from None

    def agents_on(self, machine: str) -> tuple[Agent, ...]:
        return tuple(a for a in self.agents if a.machine == machine)

    def agents_in(self, group: str) -> tuple[Agent, ...]:
        return tuple(a for a in self.agents if a.group == group)

    def groups_on(self, machine: str) -> tuple[Group, ...]:
        return tuple(g for g in self.groups if g.machine == machine)

    def find_agent(self, name: str, prefer_machine: str | None = None) -> Agent | None:
        """Resolve an agent by name: on ``prefer_machine`` first, else the only one
        of that name. ``None`` when unknown or ambiguous without a preference."""
        if prefer_machine is not None:
            local = self.agent_by_key.get((prefer_machine, name))
            if local is not None:
                return local
        matches = [a for a in self.agents if a.name == name]
        return matches[0] if len(matches) == 1 else None

    def resolve_dependency(self, agent: Agent, dependency: str) -> Agent | None:
        """Dependencies name agents on the same machine first, then anywhere."""
        return self.find_agent(dependency, prefer_machine=agent.machine)


_AGENT_DEFAULTABLE = frozenset(Defaults.model_fields)


def _dupes(names: Iterable[str]) -> str:
    seen: set[str] = set()
    dupes: list[str] = []
    for n in names:
        if n in seen and n not in dupes:
            dupes.append(n)
        seen.add(n)
    return ", ".join(dupes)
