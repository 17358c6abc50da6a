"""Generation-time checks of the rendered bundles (``fleetobs topology check`` reports them).

- ``host-port-clash``: two services of one machine publish the same host port (with the
  variables at their defaults);
- ``missing-mount``: a bind mount's source is not a file or folder that ``fleetobs build``
  renders (checked against the full rendering of every target, not the disk);
  ``mount-target-not-built`` (warning) while the target that should render it renders
  nothing but its README (a checkout where that generator is not built yet);
- ``unread-env``: a service gets an environment variable that nothing in it reads
  (readers.py);
- ``depends-on-order``: a group waits for a group of its own or a later startup stage, or
  ``depends_on`` has a cycle.
"""

from __future__ import annotations

import posixpath
import re
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from fleetobs.generate.build import TARGETS
from fleetobs.generate.compose import readers
from fleetobs.generate.compose.bundle import COMPOSE_FILE
from fleetobs.topology.checks import Finding
from fleetobs.topology.model import Topology

_VAR = re.compile(r"\$\{([A-Z0-9_]+):-([^}]*)\}")


def defaults(text: str) -> str:
    """``${NAME:-default}`` replaced by its default (what compose does with NAME unset)."""
    return _VAR.sub(lambda m: m.group(2), text)


def published(port: str) -> tuple[str, int, str] | None:
    """``addr:host:container[/proto]`` (variables at defaults) -> (addr, host port, protocol)."""
    text, _, proto = defaults(port).partition("/")
    parts = text.split(":")
    if len(parts) < 2 or not parts[-2].isdigit():
        return None
    return (parts[-3] if len(parts) >= 3 else "0.0.0.0"), int(parts[-2]), proto or "tcp"


def host_port_clashes(machine: str, services: Mapping[str, Any]) -> list[Finding]:
    users: dict[tuple[int, str], list[str]] = defaultdict(list)
    for name, svc in services.items():
        for p in svc.get("ports", []):
            parsed = published(str(p))
            if parsed is not None:
                users[(parsed[1], parsed[2])].append(name)
    return [Finding("host-port-clash", "error",
                    f"host port {port}/{proto} on {machine} is published by {', '.join(names)}",
                    {"machine": machine, "port": port, "protocol": proto, "services": names})
            for (port, proto), names in sorted(users.items()) if len(names) > 1]


def _bind_sources(svc: Mapping[str, Any]) -> list[str]:
    out = []
    for vol in svc.get("volumes", []):
        src = str(vol).split(":", 1)[0]
        if src.startswith(("./", "../")):
            out.append(src)
    return out


def missing_mounts(machine: str, services: Mapping[str, Any], rendering: Mapping[str, str]) -> list[Finding]:
    """Relative bind mounts of ``compose/<machine>/`` must be rendered files or folders."""
    files = set(rendering)
    prefixes = {"/".join(p.split("/")[:i]) for p in files for i in range(1, p.count("/") + 1)}
    unbuilt = {t for t in TARGETS if {p for p in files if p.startswith(f"{t}/")} == {f"{t}/README.md"}}
    out: list[Finding] = []
    for name, svc in services.items():
        for src in _bind_sources(svc):
            path = posixpath.normpath(posixpath.join("compose", machine, src))
            if path in files or path in prefixes:
                continue
            target = path.split("/", 1)[0]
            data = {"machine": machine, "service": name, "source": src, "path": path}
            if target in unbuilt:
                out.append(Finding("mount-target-not-built", "warning",
                                   f"{name} on {machine} mounts {path}, which target {target} does not render "
                                   "in this checkout yet", data))
            else:
                out.append(Finding("missing-mount", "error",
                                   f"{name} on {machine} mounts {path}, which `fleetobs build` does not render",
                                   data))
    return out


def service_kind(name: str, svc: Mapping[str, Any], groups: set[str]) -> str:
    image = str(svc.get("image", ""))
    if name in groups:
        return "group"
    if image.startswith("${FLEETOBS_IMAGE"):
        return "fleetobs"
    if image.startswith("${GRAFANA_IMAGE"):
        return "grafana"
    return "other"


def unread_env(machine: str, services: Mapping[str, Any], groups: set[str]) -> list[Finding]:
    out: list[Finding] = []
    for name, svc in services.items():
        kind = service_kind(name, svc, groups)
        for var in svc.get("environment", {}) or {}:
            if readers.reader(var, kind) is None:
                out.append(Finding("unread-env", "error",
                                   f"{name} on {machine} sets {var}, which nothing in a {kind} service reads",
                                   {"machine": machine, "service": name, "variable": var}))
    return out


def depends_on_order(topology: Topology, machine: str, services: Mapping[str, Any]) -> list[Finding]:
    stage = {g.service_name: g.startup_stage for g in topology.groups_on(machine)}
    out: list[Finding] = []
    graph = {n: list(s.get("depends_on") or {}) for n, s in services.items()}
    for name, deps in graph.items():
        for d in deps:
            if d not in services:
                out.append(Finding("depends-on-order", "error", f"{name} on {machine} depends on unknown {d}",
                                   {"machine": machine, "service": name, "depends_on": d}))
            elif name in stage and d in stage and stage[d] >= stage[name]:
                out.append(Finding("depends-on-order", "error",
                                   f"group {name} (stage {stage[name]}) on {machine} waits for {d} "
                                   f"(stage {stage[d]})",
                                   {"machine": machine, "service": name, "depends_on": d}))
    state: dict[str, int] = {}

    def visit(n: str, path: list[str]) -> list[str] | None:
        state[n] = 1
        for d in graph.get(n, []):
            if state.get(d) == 1:
                return [*path, n, d]
            if d in graph and d not in state and (cycle := visit(d, [*path, n])):
                return cycle
        state[n] = 2
        return None

    for n in graph:
        if n not in state and (cycle := visit(n, [])):
            out.append(Finding("depends-on-order", "error", f"depends_on cycle on {machine}: {' -> '.join(cycle)}",
                               {"machine": machine, "cycle": cycle}))
    return out


def lint_bundle(topology: Topology, machine: str, document: Mapping[str, Any],
                rendering: Mapping[str, str]) -> list[Finding]:
    services: Mapping[str, Any] = document["services"]
    groups = {g.service_name for g in topology.groups_on(machine)}
    return (host_port_clashes(machine, services) + missing_mounts(machine, services, rendering)
            + unread_env(machine, services, groups) + depends_on_order(topology, machine, services))


def check_bundles(topology: Topology) -> list[Finding]:
    """Every machine's production bundle, against the full rendering of every target."""
    from fleetobs.generate.build import render
    from fleetobs.generate.compose.bundle import bundle

    rendering = render(topology).rendering
    out: list[Finding] = []
    for m in topology.machines:
        if f"compose/{m.name}/{COMPOSE_FILE}" not in rendering:
            continue
        out += lint_bundle(topology, m.name, bundle(topology, m.name).document, rendering)
    return out
