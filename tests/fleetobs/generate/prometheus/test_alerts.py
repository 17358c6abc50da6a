"""Every alert carries what an operator needs: a `for`, a severity, a templated summary and
description, a runbook that exists and a dashboard link that resolves."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from fleetobs.generate import links
from fleetobs.generate.prometheus.model import SEVERITIES, render_template, template_fields
from fleetobs.generate.prometheus.rules import all_alerts, rule_files
from fleetobs.topology.alerting import ALERTS, DEFAULT_FOR, Alerting, seconds
from fleetobs.topology.load import load_topology
from fleetobs.topology.model import Topology

REPO = Path(__file__).resolve().parents[4]
RUNBOOKS = REPO / "docs" / "runbooks"


@pytest.fixture(scope="module")
def fleet() -> Topology:
    return load_topology(None)


def rules(fleet: Topology) -> list[dict[str, object]]:
    out = []
    for name, text in rule_files(fleet).items():
        if name != "recording.yml":
            for group in yaml.safe_load(text)["groups"]:
                out += [r for r in group["rules"] if "alert" in r]
    return out


def test_the_generated_alerts_are_exactly_the_documented_list(fleet: Topology) -> None:
    names = [str(r["alert"]) for r in rules(fleet)]
    assert sorted(set(names)) == sorted(ALERTS)
    assert set(DEFAULT_FOR) == set(ALERTS) - {"GroupErrorBudgetBurn"}  # its `for`s are per burn rate


def test_every_alert_has_for_severity_summary_description_runbook_and_dashboard(fleet: Topology) -> None:
    for r in rules(fleet):
        name = str(r["alert"])
        assert seconds(str(r["for"])) > 0, name
        labels = r["labels"]
        assert isinstance(labels, dict) and labels["severity"] in SEVERITIES, name
        ann = r["annotations"]
        assert isinstance(ann, dict)
        assert set(ann) == {"summary", "description", "runbook_url", "dashboard_url"}, name
        assert len(ann["summary"]) < 120 and ann["description"].endswith("."), name
        assert ann["runbook_url"] == f"https://github.com/fleetobs/fleetobs/blob/main/docs/runbooks/{name}.md"
        page = RUNBOOKS / f"{name}.md"
        assert page.is_file(), f"{name}: no runbook at {page.relative_to(REPO)}"
        assert page.read_text().startswith(f"# {name}\n"), page
        m = re.fullmatch(r"http://localhost:3000/d/([a-z-]+)(\?.*)?", ann["dashboard_url"])
        assert m and m.group(1) in links.DASHBOARD_UIDS, (name, ann["dashboard_url"])


def test_agent_alerts_say_which_agent_group_and_machine_and_why(fleet: Topology) -> None:
    for r in rules(fleet):
        if str(r["alert"]).startswith("Agent"):
            ann = r["annotations"]
            assert isinstance(ann, dict)
            for label in ("agent", "group", "machine"):
                assert f"$labels.{label}" in ann["description"], (r["alert"], label)
                assert f"var-{label}={{{{ $labels.{label} }}}}" in ann["dashboard_url"]
    degraded = next(r for r in rules(fleet) if r["alert"] == "AgentDegraded")
    assert "{{ $labels.reason }}" in str(degraded["annotations"])  # the hub's reason, e.g. the ready signal


def test_severity_of_agent_down_and_missing_follows_required(fleet: Topology) -> None:
    for name in ("AgentDown", "AgentMissing"):
        variants = {str(r["labels"]["severity"]): str(r["expr"]) for r in rules(fleet)  # type: ignore[index]
                    if r["alert"] == name}
        assert set(variants) == {"critical", "warning"}
        assert "fleet_agent_required == 1" in variants["critical"]
        assert "fleet_agent_required == 0" in variants["warning"]


def test_templates_stay_in_the_rendered_subset(fleet: Topology) -> None:
    for a in all_alerts(fleet):
        for text in a.annotations().values():
            for expr in template_fields(text):
                assert expr.startswith("$labels.") or expr == "$value | humanizePercentage", (a.name, expr)


def test_render_template_matches_prometheus_formatting() -> None:
    assert render_template("{{ $labels.agent }} at {{ $value | humanizePercentage }}", {"agent": "A"}, 0.4) == \
        "A at 40%"
    assert render_template("{{ $value | humanizePercentage }}", {}, 1 / 3) == "33.33%"
    assert render_template("[{{ $labels.missing }}]", {}, 0) == "[]"
    with pytest.raises(ValueError, match="outside the subset"):
        render_template("{{ $value | humanize }}", {}, 1)


def test_for_and_thresholds_come_from_the_configuration(fleet: Topology) -> None:
    cfg = Alerting.model_validate({"for": {"AgentDown": "7m"}, "runbook_url": "https://wiki/{alert}",
                                   "grafana_url": "https://grafana.example",
                                   "thresholds": {"gpu_temperature_celsius": 77}})
    by_name = {(a.name, a.severity): a for a in all_alerts(fleet, cfg)}
    assert by_name[("AgentDown", "critical")].for_ == "7m"
    assert by_name[("AgentDegraded", "warning")].for_ == DEFAULT_FOR["AgentDegraded"]
    assert by_name[("HubDown", "critical")].runbook_url == "https://wiki/HubDown"
    assert by_name[("HubDown", "critical")].dashboard_url.startswith("https://grafana.example/d/fleet-hub")
    assert "> 77" in by_name[("GpuTemperatureHigh", "warning")].expr


def test_slo_objectives_per_group(fleet: Topology) -> None:
    cfg = fleet.alerting.model_copy(update={"slo": fleet.alerting.slo.model_copy(
        update={"groups": {"utility_gpu": 0.999}})})
    doc = yaml.safe_load(rule_files(fleet, cfg)["recording.yml"])
    objectives = {r["labels"]["group"]: r["expr"] for g in doc["groups"] for r in g["rules"]
                  if r.get("record") == "machine_group:fleet_slo_objective:ratio"}
    assert len(objectives) == len(fleet.groups)
    assert objectives["utility_gpu"] == "vector(0.999)"
    assert objectives["core_platform"] == "vector(0.99)"
    burns = [a for a in all_alerts(fleet) if a.name == "GroupErrorBudgetBurn"]
    assert [(a.labels["long_window"], a.labels["short_window"], a.severity, a.for_) for a in burns] == [
        ("1h", "5m", "critical", "2m"), ("6h", "30m", "critical", "15m"),
        ("1d", "2h", "warning", "1h"), ("3d", "6h", "warning", "3h")]
    assert "14.4 * (1 - machine_group:fleet_slo_objective:ratio)" in burns[0].expr
