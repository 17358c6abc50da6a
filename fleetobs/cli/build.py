"""``fleetobs build``: render prometheus/, dashboards/ and compose/ from the topology."""

from __future__ import annotations

from pathlib import Path

import typer

from fleetobs.cli.errors import EXIT_FAILED, exit_with, fail
from fleetobs.cli.topology import TOPOLOGY_OPTION


def build(
    topology: Path | None = TOPOLOGY_OPTION,
    output: Path = typer.Option(Path("."), "--output", "-o",
                                help="Folder to write prometheus/, dashboards/, compose/ into."),
    check: bool = typer.Option(False, "--check",
                               help="Write nothing; exit 1 if the folders differ from a fresh build."),
    only: list[str] = typer.Option([], "--only", help="Build only this target (repeatable)."),
) -> None:
    """Generate the deployable folders from the topology (deterministic, committed)."""
    from fleetobs.generate.build import TARGETS, render
    from fleetobs.topology.load import load_topology

    unknown = [t for t in only if t not in TARGETS]
    if unknown:
        fail(f"--only {unknown[0]}: unknown target (choose from {', '.join(TARGETS)})")
    if output.exists() and not output.is_dir():
        fail(f"--output {output}: not a directory")
    result = render(load_topology(topology), only or TARGETS)
    if check:
        drift = result.diff(output)
        if drift:
            for line in drift.lines():
                typer.echo(line)
            typer.echo(f"{output}: generated files are out of date; run `fleetobs build -o {output}`", err=True)
            exit_with(EXIT_FAILED)
        typer.echo(f"{output}: {len(result.rendering)} generated files up to date")
        return
    try:
        drift = result.write(output)
    except OSError as exc:
        fail(f"{output}: cannot write: {exc.strerror or exc}")
    typer.echo(f"{output}: {len(result.rendering)} files, {len(drift.changed)} changed, "
               f"{len(drift.missing)} new, {len(drift.stale)} removed")
