"""``fleetobs dashboards preview``: draw the generated Grafana dashboards from a live Prometheus."""

from __future__ import annotations

from pathlib import Path

import typer

from fleetobs.cli.errors import fail
from fleetobs.cli.topology import TOPOLOGY_OPTION

app = typer.Typer(help="The generated Grafana dashboards.", no_args_is_help=True)


@app.command("preview")
def preview(
    prometheus: str = typer.Option("http://127.0.0.1:9090", "--prometheus", help="Prometheus to query."),
    output: Path = typer.Option(Path("dashboard-previews"), "--output", "-o", help="Folder for the PNGs."),
    dashboard: list[str] = typer.Option([], "--dashboard", "-d", help="Dashboard uid (repeatable; default all)."),
    var: list[str] = typer.Option([], "--var", help="NAME=VALUE for a dashboard variable (machine, group, "
                                                    "agent; default: All, or the first agent)."),
    since: str = typer.Option("1h", "--since", help="Time range ending now (30m, 1h, 6h...)."),
    topology: Path | None = TOPOLOGY_OPTION,
) -> None:
    """Draw each dashboard's panels, laid out like Grafana's grid, into DIR/<uid>.png."""
    from fleetobs.generate.dashboards.livedata import PreviewError, duration
    from fleetobs.generate.dashboards.preview import preview as run
    from fleetobs.topology.load import load_topology

    given: dict[str, str] = {}
    for item in var:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            fail(f"--var {item!r}: expected NAME=VALUE")
        given[name.strip()] = value.strip()
    if output.exists() and not output.is_dir():
        fail(f"--output {output}: not a directory")
    try:
        seconds = duration(since)
        pictures = run(load_topology(topology), prometheus, output, uids=dashboard, variables=given,
                       since_seconds=seconds)
    except PreviewError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"{output}: cannot write: {exc.strerror or exc}")
    for p in pictures:
        empty = sum(1 for r in p.panels if r.kind != "row" and not r.lines)
        typer.echo(f"{p.path}: {len(p.panels)} panels ({empty} without data)")
