"""``fleetobs topology``: import the real configs, show and check a topology."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from fleetobs.cli.errors import EXIT_FAILED, EXIT_OK, exit_with, fail

if TYPE_CHECKING:  # the models load pydantic: only commands that need them import them
    from fleetobs.topology.model import Topology

app = typer.Typer(help="Import, show and check the fleet topology.", no_args_is_help=True,
                  rich_markup_mode=None)

TOPOLOGY_OPTION = typer.Option(
    None, "--topology", "-t", envvar="FLEET_TOPOLOGY",
    help="Topology YAML file [env FLEET_TOPOLOGY]; default: the committed real fleet.",
)


def _load(path: Path | None) -> Topology:
    from fleetobs.topology.load import load_topology

    return load_topology(path)


@app.command("import")
def import_(
    files: list[Path] = typer.Argument(..., help="Startup configs of the real system (any of its schemas)."),
    plan: Path | None = typer.Option(None, "--plan", help="container-plan.yaml: groups, budgets, startup order."),
    port_offset: int = typer.Option(0, "--port-offset", min=0, max=60000, envvar="PORT_OFFSET",
                                    help="Value of ${PORT_OFFSET} in port expressions [env PORT_OFFSET]."),
    output: Path = typer.Option(..., "--output", "-o", help="Where to write the topology YAML ('-' for stdout)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Do not print warnings."),
) -> None:
    """Build a topology from the real system's startup configs (and the container plan)."""
    from fleetobs.topology.importer import import_topology

    for f in [*files, *([plan] if plan else [])]:
        if f.is_dir():
            fail(f"{f}: is a directory, expected a startup config or plan YAML file")
        if not f.is_file():
            fail(f"{f}: no such file")
    result = import_topology(files, plan=plan, env=dict(os.environ), port_offset=port_offset)
    if not quiet:
        for w in result.warnings:
            typer.echo(f"warning: {w}", err=True)
    text = result.to_yaml()
    if str(output) == "-":
        typer.echo(text, nl=False)
    else:
        try:
            output.write_text(text, encoding="utf-8")
        except OSError as exc:
            fail(f"{output}: cannot write: {exc.strerror or exc}")
        t = result.topology
        typer.echo(f"wrote {output}: {len(t.agents)} agents in {len(t.groups)} groups on "
                   f"{len(t.machines)} machines ({len(result.warnings)} warnings)", err=True)


def topology_json(t: Topology) -> dict[str, object]:
    return {
        "machines": [m.model_dump(mode="json") for m in t.machines],
        "groups": [{**g.model_dump(mode="json"), "service": g.service_name} for g in t.groups],
        "agents": [
            {"name": a.name, "machine": a.machine, "group": a.group, "port": a.port,
             "health_check_port": a.health_check_port, "required": a.required,
             "dependencies": list(a.dependencies), "probe": a.probe.value,
             "heartbeat_interval_seconds": a.heartbeat_interval_seconds}
            for a in t.agents
        ],
    }


@app.command("show")
def show(
    topology: Path | None = TOPOLOGY_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Show machines, groups and agents."""
    t = _load(topology)
    if as_json:
        typer.echo(json.dumps(topology_json(t), indent=2))
        return
    from rich.table import Table

    mt = Table(title="Machines")
    for col in ("machine", "GPU", "GPU memory", "hub port", "address", "groups", "agents"):
        mt.add_column(col)
    for m in t.machines:
        mt.add_row(m.name, m.gpu_model or "-", f"{m.gpu_memory_gib:g} GiB", str(m.hub_port), m.address,
                   str(len(t.groups_on(m.name))), str(len(t.agents_on(m.name))))
    gt = Table(title=f"Groups ({len(t.groups)})")
    for col in ("group", "machine", "service", "stage", "GPU budget", "memory limit", "CPU limit", "agents"):
        gt.add_column(col, no_wrap=True)
    for g in sorted(t.groups, key=lambda g: (g.machine, g.startup_stage, g.name)):
        gt.add_row(g.name, g.machine, g.service_name, str(g.startup_stage), f"{g.gpu_memory_budget_gib:g} GiB",
                   f"{g.memory_limit_gib:g} GiB" if g.memory_limit_gib else "-",
                   f"{g.cpu_limit:g}" if g.cpu_limit else "-", str(len(t.agents_in(g.name))))
    at = Table(title=f"Agents ({len(t.agents)})")
    for col in ("agent", "machine", "group"):
        at.add_column(col, no_wrap=True)  # names are never cut: they are what people grep for
    for col in ("port", "health", "required", "probe"):
        at.add_column(col, no_wrap=True)
    at.add_column("dependencies", overflow="fold")
    for a in sorted(t.agents, key=lambda a: (a.machine, a.group or "", a.name)):
        at.add_row(a.name, a.machine, a.group or "[red]unplaced[/red]", str(a.port), str(a.health_check_port),
                   "yes" if a.required else "no", a.probe.value, ", ".join(a.dependencies))
    from fleetobs.cli.tables import print_tables

    print_tables([mt, gt, at])


@app.command("check")
def check(
    topology: Path | None = TOPOLOGY_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Print {errors, warnings} as JSON."),
) -> None:
    """Check a topology: exit 0 with no errors (warnings allowed), 1 with errors."""
    from fleetobs.topology.checks import check_topology
    from fleetobs.topology.load import TopologyError

    if topology is not None and topology.is_dir():
        fail(f"{topology}: is a directory, expected a topology YAML file")
    if topology is not None and not topology.exists():
        fail(f"{topology}: no such file")
    try:
        t = _load(topology)
    except TopologyError as exc:
        # A file that does not load is the first kind of error check reports: all of them.
        if as_json:
            typer.echo(json.dumps({"errors": [
                {"code": "invalid-document", "message": str(p), "source": p.source, "line": p.line,
                 "path": p.path} for p in exc.problems], "warnings": []}, indent=2))
        else:
            for p in exc.problems:
                typer.echo(f"error [invalid-document] {p}")
        exit_with(EXIT_FAILED)
    report = check_topology(t)
    if as_json:
        typer.echo(json.dumps(report.to_json(), indent=2))
    else:
        for f in report.errors:
            typer.echo(f"error [{f.code}] {f.message}")
        for f in report.warnings:
            typer.echo(f"warning [{f.code}] {f.message}")
        typer.echo(f"{len(t.agents)} agents, {len(t.groups)} groups, {len(t.machines)} machines: "
                   f"{len(report.errors)} errors, {len(report.warnings)} warnings")
    exit_with(EXIT_OK if report.ok else EXIT_FAILED)
