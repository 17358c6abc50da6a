"""The committed prometheus/, dashboards/ and compose/ are exactly what `fleetobs build` renders."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleetobs.cli.main import main
from fleetobs.generate.build import TARGETS, render
from fleetobs.topology.load import load_topology

REPO = Path(__file__).resolve().parents[3]


def test_committed_folders_match_a_fresh_build() -> None:
    drift = render(load_topology(None)).diff(REPO)
    assert not drift, "generated files drifted; run `fleetobs build` in the repo root:\n" + "\n".join(drift.lines())


def test_rendering_is_deterministic() -> None:
    topology = load_topology(None)
    assert render(topology).rendering == render(topology).rendering


def test_every_target_folder_has_a_generated_readme() -> None:
    rendering = render(load_topology(None)).rendering
    for target in TARGETS:
        assert "do not edit" in rendering[f"{target}/README.md"]


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_build_check_exits_1_on_a_hand_edit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "build", "-o", str(tmp_path))[0] == 0
    assert run(capsys, "build", "-o", str(tmp_path), "--check")[0] == 0
    (tmp_path / "prometheus" / "README.md").write_text("edited by hand\n")
    (tmp_path / "compose" / "leftover.yml").write_text("x: 1\n")
    code, out, err = run(capsys, "build", "-o", str(tmp_path), "--check")
    assert code == 1
    assert "changed: prometheus/README.md" in out
    assert "stale:   compose/leftover.yml" in out
    assert "out of date" in err
    assert run(capsys, "build", "-o", str(tmp_path))[0] == 0
    assert not (tmp_path / "compose" / "leftover.yml").exists()
    assert run(capsys, "build", "-o", str(tmp_path), "--check")[0] == 0


@pytest.mark.parametrize(("args", "message"), [
    (["--only", "grafana"], "--only grafana: unknown target"),
    (["-t", "/nonexistent.yaml"], "/nonexistent.yaml: no such file"),
])
def test_build_bad_input_is_one_line_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                            args: list[str], message: str) -> None:
    code, _, err = run(capsys, "build", "-o", str(tmp_path), *args)
    assert code == 2
    assert message in err
    assert err.count("\n") == 1


def test_build_output_must_be_a_directory(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    f = tmp_path / "file"
    f.write_text("")
    code, _, err = run(capsys, "build", "-o", str(f))
    assert (code, "not a directory" in err) == (2, True)
