"""The rough edges a first try hit: bare commands, help text, directories, wide tables, docs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer

from fleetobs.cli.main import app, main
from fleetobs.testing.cli import run_cli
from fleetobs.topology.load import load_topology

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.asyncio
@pytest.mark.parametrize("args", [[], ["topology"]], ids=["fleetobs", "fleetobs topology"])
async def test_a_bare_command_prints_its_help_not_an_empty_error(args: list[str]) -> None:
    rc, out, err = await run_cli(*args)
    assert (rc, err) == (0, "")
    assert out.startswith("Usage: fleetobs") and "Commands:" in out


def _commands() -> list[tuple[list[str], typer.main.click.Command]]:  # type: ignore[name-defined]
    root = typer.main.get_command(app)
    out = []

    def walk(cmd: object, path: list[str]) -> None:
        out.append((path, cmd))
        for name, sub in sorted(getattr(cmd, "commands", {}).items()):
            walk(sub, [*path, name])

    walk(root, [])
    return out


@pytest.mark.parametrize(("path", "cmd"), _commands(), ids=lambda x: " ".join(x) if isinstance(x, list) else "")
def test_help_shows_no_type_placeholders_and_keeps_bracketed_text(
        path: list[str], cmd: object, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*path, "--help"]) == 0
    out = capsys.readouterr().out
    assert "<bool>" not in out and "…" not in out
    flat = " ".join(out.split())
    for param in getattr(cmd, "params", []):
        for env in re.findall(r"\[env [^\]]+\]", getattr(param, "help", None) or ""):
            assert " ".join(env.split()) in flat, (param.name, env)  # not eaten as markup


def test_simulate_help_keeps_its_env_hints(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--help"]) == 0
    flat = " ".join(capsys.readouterr().out.split())
    assert "[env FLEET_HUB_URL] for --push" in flat and "Topology YAML [env FLEET_TOPOLOGY]" in flat


@pytest.mark.parametrize("args", [["topology", "check"], ["topology", "show"], ["hub", "--port", "0"],
                                  ["simulate"]])
def test_a_directory_as_topology_says_so(args: list[str], tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*args, "--topology", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is a directory" in err and "no such file" not in err


@pytest.mark.asyncio
async def test_topology_show_cuts_no_name_and_lists_groups() -> None:
    rc, out, _ = await run_cli("topology", "show", env={"COLUMNS": ""})
    assert rc == 0
    assert "…" not in out
    topo = load_topology(None)
    for a in topo.agents:
        assert re.search(rf"│ {re.escape(a.name)} +│", out), a.name
    assert "Groups (12)" in out
    for g in topo.groups:
        assert re.search(rf"│ {re.escape(g.name)} +│ {g.machine} +│ {re.escape(g.service_name)} ", out), g.name


def test_the_docs_agree_on_the_heartbeat_source_field() -> None:
    from hub.api.heartbeats import _SOURCE
    from hub.api.models import Heartbeat

    hub = (REPO / "docs" / "hub.md").read_text()
    probing = (REPO / "docs" / "probing.md").read_text()
    values = Heartbeat.model_fields["source"].annotation.__args__  # type: ignore[union-attr]
    assert set(values) == {"agent", "sidecar"} and str(_SOURCE["sidecar"]) == "sidecar"
    row = next(line for line in hub.splitlines() if line.startswith("| `POST /v1/heartbeats`"))
    assert all(f"`{v}`" in row for v in values)
    assert "no `source` field" not in probing
    assert 'source: "sidecar"' in probing and "records it\nwith source `sidecar`" in probing
