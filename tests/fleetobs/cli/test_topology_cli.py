from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fleetobs.cli.main import main


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--version")
    assert (code, out) == (0, "fleetobs 0.1.0\n")


@pytest.mark.parametrize("cmd", [[], ["topology"], ["topology", "import"], ["topology", "show"],
                                 ["topology", "check"]])
def test_every_command_has_help(capsys: pytest.CaptureFixture[str], cmd: list[str]) -> None:
    code, out, _ = run(capsys, *cmd, "--help")
    assert code == 0
    assert "Usage: fleetobs" in out


def test_check_default_topology_passes_with_warnings(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "topology", "check")
    assert code == 0
    assert out.count("warning [http-port-collision]") == 32
    assert "GPU budgets on mainpc add up to 62 GiB on a 24 GiB GPU (2.6x)" in out
    assert out.count("warning [group-http-port-collision]") == 17  # inside one group's namespace
    # 32 + 17 collisions, overcommit, 2 startup-order; plus, while prometheus/ or dashboards/
    # render only their README in this checkout, the compose mounts of their files.
    pending = out.count("warning [mount-target-not-built]")
    assert out.rstrip().endswith(f"77 agents, 12 groups, 2 machines: 0 errors, {52 + pending} warnings")


def test_check_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "topology", "check", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["errors"] == []
    assert sum(w["code"] == "http-port-collision" for w in doc["warnings"]) == 32


def test_check_exits_1_on_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "t.yaml"
    bad.write_text("machines: [{name: m, hub_port: 9000, address: m}]\n"
                   "agents: [{name: A, machine: m, port: 1, health_check_port: 2, dependencies: [B]}]\n")
    code, out, _ = run(capsys, "topology", "check", "-t", str(bad), "--json")
    assert code == 1
    assert {e["code"] for e in json.loads(out)["errors"]} == {"unknown-dependency", "unplaced-agent"}


def test_check_lists_every_schema_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "t.yaml"
    bad.write_text("machines: [{name: m, hub_port: 0, address: m}]\n"
                   "agents: [{name: A, machine: m, port: 70000, health_check_port: 2, x: 1}]\n")
    code, out, _ = run(capsys, "topology", "check", "-t", str(bad))
    assert code == 1
    assert out.count("error [invalid-document]") == 3
    assert f"{bad}:2: agents[0].x (A): unknown key 'x'" in out


def test_missing_topology_file_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for cmd in ("check", "show"):
        code, out, err = run(capsys, "topology", cmd, "-t", str(tmp_path / "nope.yaml"))
        assert code == 2 and out == ""
        assert err == f"fleetobs: error: {tmp_path / 'nope.yaml'}: no such file\n"


def test_show_json_has_the_documented_shape(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "topology", "show", "--json")
    doc = json.loads(out)
    assert code == 0 and set(doc) == {"machines", "groups", "agents"}
    assert len(doc["agents"]) == 77 and len(doc["groups"]) == 12
    nlu = next(a for a in doc["agents"] if a["name"] == "NLUAgent")
    assert {k: nlu[k] for k in ("machine", "group", "port", "health_check_port", "required")} == {
        "machine": "mainpc", "group": "language_stack_gpu", "port": 5709, "health_check_port": 6709,
        "required": True}


def test_show_table_lists_agents(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    code, out, _ = run(capsys, "topology", "show")
    assert code == 0
    assert "Agents (77)" in out and "TieredResponder" in out


def test_import_writes_a_topology_that_checks(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                              mainpc_config: Path, pc2_config: Path, container_plan: Path) -> None:
    out_file = tmp_path / "fleet.yaml"
    code, _, err = run(capsys, "topology", "import", str(mainpc_config), str(pc2_config),
                       "--plan", str(container_plan), "-o", str(out_file))
    assert code == 0
    assert err.count("is in no group: unplaced") == 6
    assert f"wrote {out_file}: 77 agents in 12 groups on 2 machines" in err
    code, out, _ = run(capsys, "topology", "check", "-t", str(out_file), "--json")
    assert code == 1  # the 6 unplaced agents are errors until someone places them
    assert [e["code"] for e in json.loads(out)["errors"]] == ["unplaced-agent"] * 6


def test_import_to_stdout_with_offset(capsys: pytest.CaptureFixture[str], mainpc_config: Path) -> None:
    code, out, _ = run(capsys, "topology", "import", str(mainpc_config), "--port-offset", "100", "-o", "-", "-q")
    assert code == 0
    assert "{name: ServiceRegistry, machine: mainpc, group: infra_core, port: 7300, health_check_port: 8300" in out
    assert "hub_port: 9100" in out  # the real hub's port, offset like every expression


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["topology", "import", "nope.yaml", "-o", "x.yaml"], "fleetobs: error: nope.yaml: no such file\n"),
        (["topology", "import", "-o", "x.yaml"], "fleetobs: error: Missing argument 'files'.\n"),
        (["topology", "frobnicate"], "fleetobs: error: No such command 'frobnicate'.\n"),
    ],
)
def test_bad_usage_is_one_line(capsys: pytest.CaptureFixture[str], args: list[str], message: str) -> None:
    code, _, err = run(capsys, *args)
    assert code == 2
    assert err == message


def test_bad_startup_config_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "mainpc.yaml"
    bad.write_text("agent_groups:\n  g:\n    A: {port: lots, health_check_port: 2}\n")
    code, _, err = run(capsys, "topology", "import", str(bad), "-o", "-")
    assert code == 2
    assert err.count("\n") == 1
    assert err.startswith(f"fleetobs: error: {bad}: agent_groups.g.A.port: agent A: cannot evaluate 'lots'")


def test_console_script_runs_without_traceback(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "fleetobs.cli.main", "topology", "check", "-t",
                           str(tmp_path / "x.yaml")], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2
    assert proc.stderr.startswith("fleetobs: error:") and "Traceback" not in proc.stderr
