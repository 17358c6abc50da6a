"""promtool on everything generated: the configs and rules are valid, and every alert's
generated unit tests (fire, no-fire, vanished) pass on Debian's promtool 2.42."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from fleetobs.generate.prometheus import render
from fleetobs.generate.prometheus.rules import rule_files
from fleetobs.generate.prometheus.unittests import rule_tests
from fleetobs.testing.binaries import require_binary
from fleetobs.topology.alerting import ALERTS, RemoteWrite
from fleetobs.topology.load import load_topology, topology_from_text
from fleetobs.topology.model import Topology

pytestmark = pytest.mark.binaries

REPO = Path(__file__).resolve().parents[4]


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([require_binary("promtool"), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300, check=False)


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


@pytest.fixture(scope="module")
def fleet() -> Topology:
    return load_topology(None)


def test_check_config_and_rules_of_every_machine_in_the_committed_folder(fleet: Topology) -> None:
    folder = REPO / "prometheus"
    for m in fleet.machines:
        r = promtool("check", "config", f"{m.name}/prometheus.yml", cwd=folder)
        assert r.returncode == 0, r.stdout + r.stderr
        # every rule file is loaded through the config (7 files), none is skipped
        assert f"SUCCESS: {len(rule_files(fleet))} rule files found" in r.stdout
    r = promtool("check", "rules", *sorted(f"rules/{f}" for f in rule_files(fleet)), cwd=folder)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "FAILED" not in r.stdout


def test_every_generated_rule_test_passes(fleet: Topology) -> None:
    folder = REPO / "prometheus"
    tests = sorted(f"tests/{f}" for f in rule_tests(fleet))
    r = promtool("test", "rules", *tests, cwd=folder)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    assert r.stdout.count("SUCCESS") == len(tests)


def test_every_alert_has_fire_no_fire_and_vanished_cases(fleet: Topology) -> None:
    from fleetobs.generate.prometheus.rules import alert_groups
    cases = {name: [c.name for c in cs] for g in alert_groups(fleet) for name, cs in g.cases.items()}
    assert sorted(cases) == sorted(ALERTS)
    for name, kinds in cases.items():
        assert kinds == ["fire", "no-fire", "vanished"], name
    # a fire case expects at least one alert, a no-fire case none at any check
    for g in alert_groups(fleet):
        for name, cs in g.cases.items():
            fire, quiet, _ = cs
            assert any(c.expect for c in fire.checks), name
            assert not any(c.expect for c in quiet.checks), name


def test_the_generated_tests_can_fail(tmp_path: Path, fleet: Topology) -> None:
    """A rule that no longer matches its tests (GroupDown's threshold off by one) fails."""
    files = render(fleet)
    files["rules/agents-alerts.yml"] = files["rules/agents-alerts.yml"].replace(
        "machine_group:fleet_agent_up:sum == 0", "machine_group:fleet_agent_up:sum == 1")
    root = write(tmp_path, files)
    r = promtool("test", "rules", "tests/GroupDown.yml", "tests/AgentDown.yml", cwd=root)
    assert r.returncode == 1
    assert "name: GroupDown fire" in r.stdout + r.stderr
    assert r.stdout.count("SUCCESS") == 1  # AgentDown's tests still pass


def test_a_customised_topology_renders_valid_configs_and_passing_tests(tmp_path: Path) -> None:
    """Every knob changed at once (thresholds, for, SLO objectives, remote_write, token):
    the cases follow the configuration, so promtool still agrees."""
    secrets = {name: tmp_path / "secrets" / name for name in ("hub_read_token", "mimir")}
    for path in secrets.values():  # promtool checks that credential files exist
        path.parent.mkdir(exist_ok=True)
        path.write_text("s3cret\n")
    text = (REPO / "fleetobs" / "topology" / "data" / "fleet.yaml").read_text() + f"""
alerting:
  scrape_interval: 30s
  evaluation_interval: 30s
  hub_bearer_token_file: {secrets['hub_read_token']}
  for: {{AgentDown: 3m, GroupDown: 2m, SyncStale: 10m, LogLinesDropped: 5m}}
  thresholds:
    group_degraded_ratio: 0.2
    group_min_agents: 3
    sync_stale: 10m
    gpu_temperature_celsius: 80
    critical_xids: [79]
    container_restarts: 5
    container_restart_window: 30m
    flapping_changes: 6
  slo:
    objective: 0.995
    groups: {{core_platform: 0.95}}
  remote_write:
  - {{url: "http://127.0.0.1:8428/api/v1/write", name: vm, keep_metrics: "fleet_.*|machine.*"}}
  - url: https://mimir.example/api/v1/push
    basic_auth: {{username: fleet, password_file: {secrets['mimir']}}}
"""
    topo = topology_from_text(text, "custom.yaml")
    assert topo.alerting.remote_write[0] == RemoteWrite(url="http://127.0.0.1:8428/api/v1/write", name="vm",
                                                         keep_metrics="fleet_.*|machine.*")
    root = write(tmp_path, render(topo))
    for m in topo.machines:
        r = promtool("check", "config", f"{m.name}/prometheus.yml", cwd=root)
        assert r.returncode == 0, r.stdout + r.stderr
    changed = ["AgentDown", "AgentFlapping", "GroupDown", "GroupDegraded", "GroupErrorBudgetBurn", "SyncStale",
               "GpuTemperatureHigh", "GpuXidErrors", "ContainerRestartLoop", "LogLinesDropped"]
    r = promtool("test", "rules", *(f"tests/{a}.yml" for a in changed), cwd=root)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    assert r.stdout.count("SUCCESS") == len(changed)


def test_fast_settings_for_end_to_end_tests_keep_the_alerts_right(tmp_path: Path, fleet: Topology) -> None:
    """The short `for`s end-to-end tests use (Alerting.fast) change no alert's logic."""
    fast = fleet.alerting.fast()
    tests = {k: v for k, v in rule_tests(fleet, fast).items()
             if k.startswith(("Agent", "Group", "Hub", "PeerHub", "SyncStale"))}
    files = {f"rules/{k}": v for k, v in rule_files(fleet, fast).items()}
    files.update({f"tests/{k}": v for k, v in tests.items()})
    root = write(tmp_path, files)
    r = promtool("test", "rules", *sorted(f"tests/{f}" for f in tests), cwd=root)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    assert r.stdout.count("SUCCESS") == len(tests) == 11
