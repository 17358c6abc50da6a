from __future__ import annotations

import pytest

from fleetobs import catalog
from fleetobs.catalog import CATALOG, MetricSpec, family, naming_problems, spec


def test_catalog_names_are_unique() -> None:
    names = [m.name for m in CATALOG]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("metric", CATALOG, ids=lambda m: m.name)
def test_every_metric_follows_the_naming_rules(metric: MetricSpec) -> None:
    assert naming_problems(metric) == []


@pytest.mark.parametrize(
    ("bad", "problem"),
    [
        (MetricSpec("agent_up", "gauge", "Up."), "must start with 'fleet_'"),
        (MetricSpec("fleet_heartbeats", "counter", "Beats."), "counters end in '_total'"),
        (MetricSpec("fleet_up_total", "gauge", "Up."), "only counters end in '_total'"),
        (MetricSpec("fleet_latency_ms", "gauge", "Latency."), "use base units, not ms"),
        (MetricSpec("fleet_vram_mib", "gauge", "VRAM."), "use base units, not mib"),
        (MetricSpec("fleet_x", "histogram", "X."), "histograms measure a unit"),
        (MetricSpec("fleet_x_seconds", "gauge", "X.", ("pid",)), "label 'pid' is not in ALLOWED_LABELS"),
        (MetricSpec("fleet_x_seconds", "gauge", "X.", ("message",)), "label 'message' is not in ALLOWED_LABELS"),
        (MetricSpec("fleet_build_info", "info", "Build."), "info metrics get '_info' appended"),
        (MetricSpec("fleet_x_seconds", "gauge", ""), "help must be a sentence"),
    ],
)
def test_naming_rules_catch_mistakes(bad: MetricSpec, problem: str) -> None:
    assert any(problem in p for p in naming_problems(bad))


def test_unknown_metric_is_a_clear_error() -> None:
    with pytest.raises(KeyError, match="'fleet_nope' is not in the metrics catalog"):
        spec("fleet_nope")


def test_family_uses_the_catalog_name_help_and_labels(monkeypatch: pytest.MonkeyPatch) -> None:
    extra = (MetricSpec("fleet_test_events_total", "counter", "Test events.", ("agent",)),
             MetricSpec("fleet_test_wait_seconds", "histogram", "Test waits.", ("agent",)))
    monkeypatch.setattr(catalog, "BY_NAME", {**catalog.BY_NAME, **{m.name: m for m in extra}})
    fam = family("fleet_test_events_total")
    fam.add_metric(["A"], 3)  # type: ignore[call-arg]
    assert fam.name == "fleet_test_events" and fam.type == "counter"
    assert next(s.name for s in fam.samples) == "fleet_test_events_total"
    assert family("fleet_test_wait_seconds").type == "histogram"


def test_exposed_names() -> None:
    assert MetricSpec("fleet_x_seconds", "histogram", "X.").exposed_names() == {
        "fleet_x_seconds_bucket", "fleet_x_seconds_sum", "fleet_x_seconds_count"}
    assert MetricSpec("fleet_build", "info", "B.").exposed_names() == {"fleet_build_info"}


def test_typed_family_helpers_refuse_the_wrong_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    extra = (MetricSpec("fleet_test_level", "gauge", "Test level."),
             MetricSpec("fleet_test_done_total", "counter", "Test done."))
    monkeypatch.setattr(catalog, "BY_NAME", {**catalog.BY_NAME, **{m.name: m for m in extra}})
    assert catalog.gauge("fleet_test_level").type == "gauge"
    assert catalog.counter("fleet_test_done_total").type == "counter"
    with pytest.raises(TypeError, match="fleet_test_level is a gauge, not a counter"):
        catalog.counter("fleet_test_level")
    with pytest.raises(TypeError, match="fleet_test_done_total is a counter, not a histogram"):
        catalog.histogram("fleet_test_done_total")
