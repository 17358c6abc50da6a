"""Every generated compose file is valid: the Compose Specification's JSON schema, and
docker-compose 1.29 itself (``docker-compose config``, which needs no daemon)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from fleetobs.cli.main import main
from fleetobs.testing.binaries import require_binary

SCHEMA = Path(__file__).resolve().parents[3] / "fixtures" / "schemas" / "compose" / "compose-spec.json"
FILES = [(m, f) for m in ("mainpc", "pc2") for f in ("docker-compose.yml", "docker-compose.test.yml")]


@pytest.mark.parametrize(("machine", "name"), FILES)
def test_each_file_validates_against_the_compose_spec_schema(rendering: dict[str, str], machine: str,
                                                             name: str) -> None:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft7Validator.check_schema(schema)
    doc = yaml.safe_load(rendering[f"compose/{machine}/{name}"])
    errors = list(jsonschema.Draft7Validator(schema).iter_errors(doc))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:10])


def test_the_schema_catches_a_broken_file(compose: dict[str, dict[str, Any]]) -> None:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    broken = {**compose["mainpc"], "services": {"hub": {**compose["mainpc"]["services"]["hub"], "restrat": "no"}}}
    assert list(jsonschema.Draft7Validator(schema).iter_errors(broken))


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("build")
    assert main(["build", "-o", str(out)]) == 0
    return out


_CACHE: dict[tuple[str, ...], subprocess.CompletedProcess[str]] = {}


def _config(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``docker-compose ARGS config`` in ``cwd`` (cached: each run takes seconds)."""
    key = (str(cwd), *args)
    if key not in _CACHE:
        binary = require_binary("docker-compose")
        _CACHE[key] = subprocess.run([binary, *args, "config"], cwd=cwd, capture_output=True, text=True,
                                     timeout=120, check=False)
    return _CACHE[key]


@pytest.mark.parametrize("machine", ["mainpc", "pc2"])
@pytest.mark.parametrize("args", [["-f", "docker-compose.yml"],
                                  ["--env-file", ".env.example", "-f", "docker-compose.yml"],
                                  ["--env-file", "test.env", "-f", "docker-compose.test.yml"]],
                         ids=["defaults", "env-example", "test"])
def test_docker_compose_accepts_each_bundle(built: Path, machine: str, args: list[str]) -> None:
    proc = _config(built / "compose" / machine, *args)
    assert proc.returncode == 0, proc.stderr
    assert "WARNING" not in proc.stderr, proc.stderr  # e.g. an unset variable, an ignored deploy key
    resolved = yaml.safe_load(proc.stdout)
    assert "hub" in resolved["services"]
    group = next(s for s in resolved["services"].values() if str(s.get("network_mode", "")).startswith("service:"))
    assert group["stop_signal"] == "SIGINT"


def test_docker_compose_resolves_the_defaults(built: Path) -> None:
    proc = _config(built / "compose" / "mainpc", "-f", "docker-compose.yml")
    services = yaml.safe_load(proc.stdout)["services"]
    hub = services["hub"]
    assert hub["environment"]["FLEET_PEERS"] == "http://pc2:9100"
    assert hub["ports"] == ["0.0.0.0:9000:9000/tcp"]
    assert services["core-platform"]["command"] == ""  # empty: the agents' image's own CMD
    mounts = services["core-platform"]["volumes"]
    assert str(built / "compose" / "mainpc" / "group" / "core_platform.json") + ":/fleetobs/group.json:ro" in mounts


def test_docker_compose_rejects_a_broken_bundle(built: Path, tmp_path: Path) -> None:
    bad = tmp_path / "docker-compose.yml"
    text = (built / "compose" / "mainpc" / "docker-compose.yml").read_text(encoding="utf-8")
    bad.write_text(text.replace("network_mode: 'service:core-platform-net'", "network_mode: 'service:nowhere'"))
    proc = _config(tmp_path, "-f", "docker-compose.yml")
    assert proc.returncode != 0
    assert "nowhere" in proc.stderr
