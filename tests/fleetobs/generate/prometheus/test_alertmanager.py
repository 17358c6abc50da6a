"""alertmanager.yml: amtool accepts it, every generated alert routes to the receiver its
severity says, and a real Alertmanager inhibits and groups the way docs/alerting.md says."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from fleetobs.generate.prometheus.alertmanager import alertmanager_config, cluster_args
from fleetobs.generate.prometheus.rules import alert_groups
from fleetobs.testing.alertmanager import AlertmanagerProcess
from fleetobs.testing.binaries import require_binary
from fleetobs.topology.alerting import Receiver
from fleetobs.topology.load import load_topology
from fleetobs.topology.model import Topology

REPO = Path(__file__).resolve().parents[4]
COMMITTED = REPO / "prometheus" / "alertmanager" / "alertmanager.yml"
RECEIVER = {"critical": "page", "warning": "ticket", "info": "null"}


@pytest.fixture(scope="module")
def fleet() -> Topology:
    return load_topology(None)


def amtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([require_binary("amtool"), *args], capture_output=True, text=True,
                          timeout=60, check=False)


@pytest.mark.binaries
def test_amtool_accepts_the_committed_and_the_test_configs(tmp_path: Path, fleet: Topology) -> None:
    r = amtool("check-config", str(COMMITTED))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "8 inhibit rules" in r.stdout and "4 receivers" not in r.stdout
    alt = tmp_path / "am.yml"
    alt.write_text(alertmanager_config(fleet, webhook_url="http://127.0.0.1:1/hook",
                                       watchdog_url="http://127.0.0.1:1/watchdog"))
    r = amtool("check-config", str(alt))
    assert r.returncode == 0 and "4 receivers" in r.stdout, r.stdout + r.stderr


def _fired_label_sets(fleet: Topology) -> Iterator[tuple[str, dict[str, str]]]:
    """Every label set the promtool cases prove an alert fires with."""
    for g in alert_groups(fleet):
        for name, cases in g.cases.items():
            for case in cases:
                for check in case.checks:
                    for e in check.expect:
                        yield name, dict(e.labels)


@pytest.mark.binaries
def test_every_alert_routes_by_its_severity(fleet: Topology) -> None:
    seen: set[str] = set()
    for name, labels in _fired_label_sets(fleet):
        want = RECEIVER[labels["severity"]]
        args = [f"{k}={v}" for k, v in {"alertname": name, **labels}.items()]
        r = amtool("config", "routes", "test", f"--config.file={COMMITTED}", f"--verify.receivers={want}", *args)
        assert r.returncode == 0, (name, labels, r.stdout + r.stderr)
        seen.add(name)
    assert len(seen) == 27


@pytest.mark.binaries
@pytest.mark.parametrize(("labels", "receiver"), [
    ({"alertname": "Watchdog", "severity": "info", "machine": "mainpc"}, "null"),
    ({"alertname": "AgentDegraded", "severity": "warning", "reason": "x"}, "ticket"),
    ({"alertname": "AgentDown", "severity": "critical", "machine": "pc2", "group": "g"}, "page"),
    ({"alertname": "HubDown", "severity": "critical", "machine": "pc2"}, "page"),
    ({"alertname": "AgentDown", "severity": "warning", "machine": "pc2", "group": "g"}, "ticket"),
    ({"alertname": "GpuTemperatureHigh", "severity": "warning", "machine": "pc2"}, "ticket"),
    ({"alertname": "Whatever", "severity": "info"}, "null"),
    ({"alertname": "NoSeverity"}, "null"),
])
def test_every_route_of_the_tree(labels: dict[str, str], receiver: str) -> None:
    """Each route of the tree once (amtool config routes show lists the same seven)."""
    args = [f"{k}={v}" for k, v in labels.items()]
    r = amtool("config", "routes", "test", f"--config.file={COMMITTED}", f"--verify.receivers={receiver}", *args)
    assert r.returncode == 0, r.stdout + r.stderr
    wrong = "page" if receiver != "page" else "ticket"
    r = amtool("config", "routes", "test", f"--config.file={COMMITTED}", f"--verify.receivers={wrong}", *args)
    assert r.returncode != 0


def test_receivers_and_grouping_follow_the_configuration(fleet: Topology) -> None:
    cfg = fleet.alerting.model_copy(update={"alertmanager": fleet.alerting.alertmanager.model_copy(update={
        "group_wait": "10s", "page": Receiver(webhook_url="https://pager.example/hook"),
        "watchdog": Receiver(webhook_url="https://deadman.example/ping")})})
    doc = yaml.safe_load(alertmanager_config(fleet, config=cfg))
    assert doc["route"]["group_wait"] == "10s"
    urls = {r["name"]: [w["url"] for w in r.get("webhook_configs", [])] for r in doc["receivers"]}
    assert urls == {"null": [], "page": ["https://pager.example/hook"],
                    "ticket": ["http://127.0.0.1:9095/fleetobs/ticket"], "watchdog": ["https://deadman.example/ping"]}
    assert doc["route"]["routes"][0]["receiver"] == "watchdog"
    # the committed default drops the Watchdog: no dead man's switch is configured
    assert yaml.safe_load(COMMITTED.read_text())["route"]["routes"][0]["receiver"] == "null"


def test_cluster_args_peer_every_other_machine(fleet: Topology) -> None:
    assert cluster_args(fleet, "mainpc") == ["--cluster.listen-address=0.0.0.0:9094", "--cluster.peer=pc2:9094"]
    assert cluster_args(fleet, "pc2", peers_at=["127.0.0.1:19094"], listen="127.0.0.2:9094") == [
        "--cluster.listen-address=127.0.0.2:9094", "--cluster.peer=127.0.0.1:19094"]


# --- a real Alertmanager: inhibition and grouping ------------------------------------


def _alert(alertname: str, **labels: str) -> dict[str, Any]:
    now = time.time()
    return {"labels": {"alertname": alertname, **labels},
            "annotations": {"summary": alertname},
            "startsAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 5)),
            "endsAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + 600))}


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.load(r)


@pytest.fixture(scope="module")
def alertmanager(tmp_path_factory: pytest.TempPathFactory, fleet: Topology) -> Iterator[AlertmanagerProcess]:
    require_binary("prometheus-alertmanager", "alertmanager")
    # webhooks to a closed port: nothing is delivered, groups and inhibitions still form
    config = alertmanager_config(fleet, webhook_url="http://127.0.0.1:9/hook")
    with AlertmanagerProcess(config, tmp_path_factory.mktemp("am")) as am:
        yield am


def _state(am: AlertmanagerProcess, alerts: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Post ``alerts``; {label fingerprint: inhibitedBy} of each, once Alertmanager settled."""
    am.post_alerts(alerts)
    want = {json.dumps(a["labels"], sort_keys=True) for a in alerts}
    deadline = time.monotonic() + 10
    while True:
        got = {json.dumps(a["labels"], sort_keys=True): a["status"]["inhibitedBy"]
               for a in _get(f"{am.url}/api/v2/alerts")}
        if want <= set(got) or time.monotonic() > deadline:
            return {k: v for k, v in got.items() if k in want}
        time.sleep(0.1)


def _resolve(am: AlertmanagerProcess, alerts: list[dict[str, Any]]) -> None:
    """End ``alerts`` now (as Prometheus does when they resolve): they inhibit nothing more."""
    past = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 1))
    am.post_alerts([{**a, "endsAt": past} for a in alerts])


def _inhibited(state: dict[str, list[str]], alert: dict[str, Any]) -> bool:
    return bool(state[json.dumps(alert["labels"], sort_keys=True)])


@pytest.mark.binaries
@pytest.mark.slow
def test_inhibitions(alertmanager: AlertmanagerProcess) -> None:
    crit = {"severity": "critical"}
    cases = [
        # (source, silenced targets, targets that stay)
        (_alert("GroupDown", machine="mainpc", group="vision_gpu", **crit),
         [_alert("AgentDown", machine="mainpc", group="vision_gpu", agent="FaceRecognitionAgent", **crit),
          _alert("GroupDegraded", machine="mainpc", group="vision_gpu", **crit),
          _alert("GroupErrorBudgetBurn", machine="mainpc", group="vision_gpu", long_window="1h", **crit)],
         [_alert("AgentDown", machine="mainpc", group="utility_gpu", agent="CodeGenerator", **crit)]),
        (_alert("GroupDegraded", machine="pc2", group="tutor_suite_cpu", **crit),
         [_alert("AgentDown", machine="pc2", group="tutor_suite_cpu", agent="TutorAgent", **crit)],
         [_alert("AgentDown", machine="pc2", group="infra_core_cpu", agent="TieredResponder", **crit)]),
        (_alert("HubDown", machine="pc2", **crit),
         [_alert("AgentMissing", machine="pc2", group="infra_core_cpu", agent="X", **crit),
          _alert("PeerHubUnreachable", machine="mainpc", peer="pc2", **crit),
          _alert("SyncStale", machine="mainpc", peer="pc2", severity="warning")],
         [_alert("AgentMissing", machine="mainpc", group="memory_stack", agent="X", **crit)]),
        (_alert("PeerHubUnreachable", machine="pc2", peer="mainpc", **crit),
         [_alert("AgentDown", machine="mainpc", group="reasoning_gpu", agent="Y", **crit),
          _alert("SyncStale", machine="pc2", peer="mainpc", severity="warning")],
         [_alert("AgentDown", machine="pc2", group="vision_dream_gpu", agent="Y", **crit)]),
    ]
    for source, silenced, kept in cases:
        state = _state(alertmanager, [source, *silenced, *kept])
        assert not _inhibited(state, source), source
        for a in silenced:
            assert _inhibited(state, a), (source["labels"]["alertname"], a["labels"])
        for a in kept:
            assert not _inhibited(state, a), (source["labels"]["alertname"], a["labels"])
        _resolve(alertmanager, [source, *silenced, *kept])


@pytest.mark.binaries
@pytest.mark.slow
def test_grouping_one_notification_per_fault(alertmanager: AlertmanagerProcess, fleet: Topology) -> None:
    """The real fleet's ready-key expiry (all 77 agents degraded, one reason) is one group;
    a dead container (GroupDown and its agents' AgentDown) is one group."""
    reason = "health_checks.ready_signal=false"
    expiry = [_alert("AgentDegraded", machine=a.machine, group=a.group or "", agent=a.name, reason=reason,
                     severity="warning") for a in fleet.agents]
    dead = [a for a in fleet.agents if a.group == "vision_dream_gpu"]
    container = [_alert("GroupDown", machine="pc2", group="vision_dream_gpu", severity="critical")] + [
        _alert("AgentDown", machine="pc2", group="vision_dream_gpu", agent=a.name, severity="critical") for a in dead]
    _state(alertmanager, expiry + container)
    groups = _get(f"{alertmanager.url}/api/v2/alerts/groups")
    by_key = {(g["receiver"]["name"], json.dumps(g["labels"], sort_keys=True)): g for g in groups}
    degraded = by_key[("ticket", json.dumps({"alertname": "AgentDegraded", "reason": reason}, sort_keys=True))]
    assert len(degraded["alerts"]) == 77
    vision = by_key[("page", json.dumps({"group": "vision_dream_gpu", "machine": "pc2"}, sort_keys=True))]
    in_group = {json.dumps(a["labels"], sort_keys=True) for a in vision["alerts"]}
    assert {json.dumps(a["labels"], sort_keys=True) for a in container} <= in_group
    assert len(dead) >= 2
    # the inhibited AgentDowns are in the group but not in its notification
    active = [a for a in vision["alerts"] if not a["status"]["inhibitedBy"]]
    assert [a["labels"]["alertname"] for a in active] == ["GroupDown"]
