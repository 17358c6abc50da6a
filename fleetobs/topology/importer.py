"""Build a topology from the real system's own startup configs (and the container plan).

Schemas read (all seen in the real repository's history):

* MainPC style: ``agent_groups: {group: {Agent: {port, health_check_port, ...}}}``
  (with YAML anchors) and ``docker_groups: {name: {description, agents}}`` beside it;
* PC2 style: ``pc2_services: [{name, host, port, ...}]`` with ``docker_groups``;
* unified "v3": ``machine_profiles: {machine: {enabled_groups: [...]}}`` over shared
  ``agent_groups``;
* mistakes: ``docker_groups`` nested inside ``agent_groups`` (recognised by the
  ``{description, agents: [...]}`` shape, imported as group definitions, never as
  agents), agents commented out, empty groups, missing optional fields.

Placement: ``--plan`` groups first, else the files' ``docker_groups``, else unplaced.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from fleetobs.topology.load import Problem, TopologyError, parse_yaml
from fleetobs.topology.model import NAME_RE, ProbeKind, Topology
from fleetobs.topology.ports import PortExpressionError, expand_port

#: The real fleet's own hub: fleetobs' hub takes its place and port, so it is
#: watched by its own heartbeat rather than by probing a ZeroMQ port it lacks.
SELF_AGENT = "ObservabilityHub"

ANY_MACHINE = "*"

_AGENT_KEYS = {"script_path", "port", "health_check_port", "required", "dependencies", "config",
               "host", "name", "command_args", "env", "environment", "description"}


@dataclass
class RawAgent:
    name: str
    machine: str
    port: int
    health_check_port: int
    required: bool
    dependencies: list[str]
    source_group: str
    source: str
    path: str


@dataclass
class RawGroup:
    name: str
    machine: str
    description: str
    agents: list[str]
    source: str


@dataclass
class ImportResult:
    document: dict[str, Any]
    topology: Topology
    warnings: list[Problem] = field(default_factory=list)

    def to_yaml(self) -> str:
        return dump_topology_document(self.document)


@dataclass
class _FileResult:
    agents: list[RawAgent] = field(default_factory=list)
    docker_groups: list[RawGroup] = field(default_factory=list)
    interval: float | None = None


class _Ctx:
    def __init__(self, source: str, env: Mapping[str, str]) -> None:
        self.source = source
        self.env = env
        self.errors: list[Problem] = []
        self.warnings: list[Problem] = []

    def error(self, path: str, message: str) -> None:
        self.errors.append(Problem(self.source, path, message))

    def warn(self, path: str, message: str) -> None:
        self.warnings.append(Problem(self.source, path, message))


def _is_docker_group_shape(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and isinstance(value.get("agents"), list)
        and set(value) <= {"description", "agents"}
    )


def _machine_hint(path: str, known: Iterable[str]) -> str | None:
    stem = Path(path).name.lower()
    # Longest first so "pc2" does not shadow "mainpc2" style names.
    for name in sorted(known, key=len, reverse=True):
        if name.lower() in stem:
            return name
    return None


def _parse_agent(ctx: _Ctx, name: Any, spec: Any, machine: str, group: str, path: str) -> RawAgent | None:
    if not isinstance(name, str) or not NAME_RE.match(name):
        ctx.error(path, f"agent name {name!r} is not a valid name "
                        "([A-Za-z0-9_.-], 1-128 chars, not starting with . or -)")
        return None
    if not isinstance(spec, dict):
        ctx.error(path, f"agent {name}: expected a mapping of fields, got {type(spec).__name__}")
        return None
    unknown = sorted(set(spec) - _AGENT_KEYS)
    if unknown:
        ctx.warn(path, f"agent {name}: ignored unknown field(s) {', '.join(map(str, unknown))}")
    if "port" not in spec:
        ctx.error(f"{path}.port", f"agent {name}: required field 'port' is missing")
        return None
    try:
        port = expand_port(spec["port"], ctx.env)
    except PortExpressionError as exc:
        ctx.error(f"{path}.port", f"agent {name}: {exc}")
        return None
    if "health_check_port" in spec:
        try:
            health = expand_port(spec["health_check_port"], ctx.env)
        except PortExpressionError as exc:
            ctx.error(f"{path}.health_check_port", f"agent {name}: {exc}")
            return None
    else:
        # BaseAgent's own default when the config leaves it out.
        health = port + 1
        ctx.warn(path, f"agent {name}: no health_check_port, using port + 1 = {health}")
    required = spec.get("required", True)
    if not isinstance(required, bool):
        ctx.error(f"{path}.required", f"agent {name}: 'required' must be true or false, got {required!r}")
        return None
    deps_raw = spec.get("dependencies") or []
    if not isinstance(deps_raw, list) or not all(isinstance(d, str) for d in deps_raw):
        ctx.error(f"{path}.dependencies", f"agent {name}: 'dependencies' must be a list of names")
        return None
    return RawAgent(name, machine, port, health, required, list(deps_raw), group, ctx.source, path)


def _read_docker_groups(ctx: _Ctx, value: Any, machine: str, path: str, out: _FileResult) -> None:
    if not isinstance(value, dict):
        ctx.error(path, f"expected a mapping of group definitions, got {type(value).__name__}")
        return
    for gname, gdef in value.items():
        if not _is_docker_group_shape(gdef):
            ctx.error(f"{path}.{gname}", "expected {description, agents: [...]}")
            continue
        agents = [a for a in gdef["agents"] if isinstance(a, str)]
        out.docker_groups.append(RawGroup(str(gname), machine, str(gdef.get("description", "")), agents, ctx.source))


def _read_agent_groups(
    ctx: _Ctx, groups: Any, machines_for_group: Mapping[str, list[str]] | None, default_machine: str, out: _FileResult
) -> None:
    if not isinstance(groups, dict):
        ctx.error("agent_groups", f"expected a mapping of groups, got {type(groups).__name__}")
        return
    for gname, agents in groups.items():
        gpath = f"agent_groups.{gname}"
        if agents is None:
            continue  # every agent in it commented out
        if not isinstance(agents, dict):
            ctx.error(gpath, f"expected a mapping of agents, got {type(agents).__name__}")
            continue
        machines = machines_for_group.get(str(gname), []) if machines_for_group is not None else [default_machine]
        if gname == "docker_groups" or _is_docker_group_shape(agents):
            # An indentation mistake seen in the wild: group definitions inside agent_groups.
            defs = agents if gname == "docker_groups" else {gname: agents}
            ctx.warn(gpath, "docker_groups definitions found inside agent_groups (indentation mistake?): "
                     "imported as group definitions, not agents")
            for machine in machines or [default_machine]:
                _read_docker_groups(ctx, defs, machine, gpath, out)
            continue
        if machines_for_group is not None and not machines:
            ctx.warn(gpath, f"group {gname} is enabled on no machine in machine_profiles: its agents are skipped")
            continue
        for aname, spec in agents.items():
            apath = f"{gpath}.{aname}"
            if _is_docker_group_shape(spec):
                ctx.warn(apath, f"{aname} looks like a docker_groups entry nested in agent_groups: "
                         "imported as a group definition, not an agent")
                for machine in machines:
                    _read_docker_groups(ctx, {aname: spec}, machine, apath, out)
                continue
            for machine in machines:
                agent = _parse_agent(ctx, aname, spec, machine, str(gname), apath)
                if agent is not None:
                    out.agents.append(agent)


def _read_services_list(ctx: _Ctx, services: Any, machine: str, out: _FileResult) -> None:
    if not isinstance(services, list):
        ctx.error("pc2_services", f"expected a list of services, got {type(services).__name__}")
        return
    for i, spec in enumerate(services):
        path = f"pc2_services[{i}]"
        if not isinstance(spec, dict) or "name" not in spec:
            ctx.error(path, "expected a mapping with a 'name'")
            continue
        agent = _parse_agent(ctx, spec["name"], spec, machine, "pc2_services", path)
        if agent is not None:
            out.agents.append(agent)


def read_startup_config(
    text: str, source: str, env: Mapping[str, str], known_machines: Sequence[str]
) -> tuple[_FileResult, _Ctx]:
    ctx = _Ctx(source, env)
    data = parse_yaml(text, source)
    out = _FileResult()
    if data is None:
        ctx.error("", "the file is empty")
        return out, ctx
    if not isinstance(data, dict):
        ctx.error("", f"expected a mapping at the top level, got {type(data).__name__}")
        return out, ctx
    hint = _machine_hint(source, known_machines)
    interval = (data.get("global_settings") or {}).get("health_checks", {}) if isinstance(
        data.get("global_settings"), dict) else {}
    if isinstance(interval, dict) and isinstance(interval.get("interval_seconds"), int | float):
        out.interval = float(interval["interval_seconds"])

    profiles = data.get("machine_profiles")
    if "pc2_services" in data:
        machine = hint or "pc2"
        _read_services_list(ctx, data["pc2_services"], machine, out)
    if "agent_groups" in data:
        if profiles is not None:
            if not isinstance(profiles, dict):
                ctx.error("machine_profiles", "expected {machine: {enabled_groups: [...]}}")
                return out, ctx
            by_group: dict[str, list[str]] = {}
            for mname, prof in profiles.items():
                groups = prof.get("enabled_groups") if isinstance(prof, dict) else None
                if not isinstance(groups, list):
                    ctx.error(f"machine_profiles.{mname}", "expected 'enabled_groups: [...]'")
                    continue
                for g in groups:
                    by_group.setdefault(str(g), []).append(str(mname))
            _read_agent_groups(ctx, data["agent_groups"], by_group, hint or "mainpc", out)
        else:
            _read_agent_groups(ctx, data["agent_groups"], None, hint or "mainpc", out)
    if "pc2_services" not in data and "agent_groups" not in data:
        ctx.error("", "no agents found: expected 'agent_groups' or 'pc2_services'")
    if "docker_groups" in data:
        # In a unified file a group lands on every machine that runs its agents.
        machine = ANY_MACHINE if profiles is not None else hint or (
            "pc2" if "pc2_services" in data else "mainpc")
        _read_docker_groups(ctx, data["docker_groups"], machine, "docker_groups", out)
    return out, ctx


def _plan_document(
    plan: Any, source: str, errors: list[Problem]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[tuple[str, str], str]]:
    """Machines, groups and (machine, agent) -> group from container-plan.yaml."""
    machines: list[dict[str, Any]] = []
    groups: list[dict[str, Any]] = []
    placement: dict[tuple[str, str], str] = {}
    if not isinstance(plan, dict) or not isinstance(plan.get("groups"), dict):
        errors.append(Problem(source, "", "not a container plan: expected 'machines' and 'groups' mappings"))
        return machines, groups, placement
    for mname, m in (plan.get("machines") or {}).items():
        if not isinstance(m, dict):
            errors.append(Problem(source, f"machines.{mname}", "expected a mapping"))
            continue
        machines.append({"name": str(mname), "gpu_model": m.get("gpu"),
                         "gpu_memory_gib": m.get("gpu_memory_gb", 0), "hub_port": m.get("hub_port", 9000),
                         "address": str(m.get("address", mname))})
    stages: dict[str, int] = {}
    for _mname, order in (plan.get("startup_order") or {}).items():
        for i, step in enumerate(order or []):
            for g in step if isinstance(step, list) else [step]:
                stages[str(g)] = i + 1
    for gname, g in plan["groups"].items():
        if not isinstance(g, dict) or "machine" not in g:
            errors.append(Problem(source, f"groups.{gname}", "expected a mapping with 'machine'"))
            continue
        doc: dict[str, Any] = {"name": str(gname), "machine": str(g["machine"]),
                               "gpu_memory_budget_gib": g.get("gpu_memory_gb", 0)}
        if g.get("memory_gb"):
            doc["memory_limit_gib"] = g["memory_gb"]
        doc["startup_stage"] = stages.get(str(gname), 1)
        groups.append(doc)
        for a in list(g.get("agents") or []) + list(g.get("cpu_sidecars") or []):
            placement[(str(g["machine"]), str(a))] = str(gname)
    return machines, groups, placement


def import_topology(
    files: Sequence[Path], plan: Path | None = None, env: Mapping[str, str] | None = None, port_offset: int = 0
) -> ImportResult:
    """Read startup configs (and optionally the plan) into a validated topology."""
    env = {**(env or {}), "PORT_OFFSET": str(port_offset)}
    errors: list[Problem] = []
    warnings: list[Problem] = []
    plan_machines: list[dict[str, Any]] = []
    plan_groups: list[dict[str, Any]] = []
    placement: dict[tuple[str, str], str] = {}
    if plan is not None:
        plan_data = parse_yaml(_read(plan), str(plan))
        plan_machines, plan_groups, placement = _plan_document(plan_data, str(plan), errors)
    known = [m["name"] for m in plan_machines] or ["mainpc", "pc2"]

    agents: list[RawAgent] = []
    docker_groups: list[RawGroup] = []
    interval: float | None = None
    for f in files:
        res, ctx = read_startup_config(_read(f), str(f), env, known)
        errors += ctx.errors
        warnings += ctx.warnings
        agents += res.agents
        docker_groups += res.docker_groups
        interval = interval or res.interval
    if errors:
        raise TopologyError(errors)

    machine_names = list(dict.fromkeys([m["name"] for m in plan_machines] + [a.machine for a in agents]))
    machines = {m["name"]: m for m in plan_machines}
    for i, name in enumerate(machine_names):
        if name not in machines:
            own_hub = next((a.port for a in agents if a.machine == name and a.name == SELF_AGENT), None)
            machines[name] = {"name": name, "hub_port": own_hub or 9000 + 100 * i, "address": name}
            warnings.append(Problem("<import>", f"machines.{name}",
                                    "no plan: GPU model and memory unknown, set them by hand"))

    docker_groups = _expand_any_machine(docker_groups, agents)
    groups: list[dict[str, Any]]
    if plan is not None:
        groups = plan_groups
    else:
        groups, placement = _groups_from_docker_groups(docker_groups, warnings)

    agent_docs: list[dict[str, Any]] = []
    for a in agents:
        doc: dict[str, Any] = {"name": a.name, "machine": a.machine}
        group = placement.get((a.machine, a.name))
        if group is None:
            warnings.append(Problem(a.source, a.path, f"agent {a.name} ({a.machine}) is in no group: unplaced"))
        else:
            doc["group"] = group
        doc.update(port=a.port, health_check_port=a.health_check_port, required=a.required,
                   dependencies=a.dependencies)
        if a.name == SELF_AGENT:
            doc["probe"] = ProbeKind.PUSH.value
        agent_docs.append(doc)

    document: dict[str, Any] = {"version": 1}
    if interval is not None:
        document["defaults"] = {"heartbeat_interval_seconds": interval, "probe": ProbeKind.ZMQ.value}
    document["machines"] = [machines[n] for n in machine_names]
    document["groups"] = groups
    document["agents"] = agent_docs
    try:
        topology = Topology.model_validate(document)
    except ValidationError as exc:
        raise TopologyError([Problem("<import>", "", f"imported topology is invalid: {exc}")]) from None
    return ImportResult(document, topology, warnings)


def _expand_any_machine(groups: Sequence[RawGroup], agents: Sequence[RawAgent]) -> list[RawGroup]:
    out: list[RawGroup] = []
    for g in groups:
        if g.machine != ANY_MACHINE:
            out.append(g)
            continue
        for machine in dict.fromkeys(a.machine for a in agents if a.name in g.agents):
            out.append(RawGroup(g.name, machine, g.description, g.agents, g.source))
    return out


def _groups_from_docker_groups(
    docker_groups: Sequence[RawGroup], warnings: list[Problem]
) -> tuple[list[dict[str, Any]], dict[tuple[str, str], str]]:
    names = [g.name for g in docker_groups]
    groups: list[dict[str, Any]] = []
    placement: dict[tuple[str, str], str] = {}
    for g in docker_groups:
        name = g.name
        # The real files reuse names across machines (infra_core, memory_stack, utility_cpu).
        if names.count(g.name) > 1:
            name = f"{g.machine}_{g.name}"
            warnings.append(Problem(g.source, f"docker_groups.{g.name}",
                                    f"group name {g.name} is used on several machines: renamed {name}"))
        if any(d["name"] == name for d in groups):
            warnings.append(Problem(g.source, f"docker_groups.{g.name}", f"group {name} defined twice: merged"))
        else:
            groups.append({"name": name, "machine": g.machine, "description": g.description})
        for a in g.agents:
            placement.setdefault((g.machine, a), name)
    return groups, placement


def _read(path: Path) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise TopologyError([Problem(str(path), "", f"cannot read: {exc.strerror or exc}")]) from None
    except UnicodeDecodeError as exc:
        raise TopologyError([Problem(str(path), "", f"not UTF-8 text ({exc.reason})")]) from None


def dump_topology_document(document: Mapping[str, Any]) -> str:
    """YAML that stays readable by hand: one agent per line, sections in block style."""
    out: list[str] = []
    for key in ("version", "defaults", "machines", "groups"):
        if key in document:
            out.append(yaml.safe_dump({key: document[key]}, sort_keys=False, width=120).rstrip())
    out.append("agents:")
    for a in document.get("agents", []):
        line = yaml.safe_dump(a, default_flow_style=True, sort_keys=False, width=10_000).strip()
        out.append(f"  - {line}")
    return "\n".join(out) + "\n"
