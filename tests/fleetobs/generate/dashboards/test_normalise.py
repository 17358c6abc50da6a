"""The normalisation step: grafanalib 0.7.1's JSON in, a Grafana 11.6 document out."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from grafanalib import core as g

from fleetobs.generate.dashboards.normalise import SCHEMA_VERSION, normalise_dashboard, normalise_panel, to_plain
from fleetobs.generate.dashboards.panels import loki, prom, stat, steps, timeseries
from fleetobs.generate.dashboards.variables import templating


def sample() -> g.Dashboard:
    return g.Dashboard(
        title="t", uid="u", templating=templating(("datasource", "machine")),
        panels=[g.RowPanel(title="r", gridPos=g.GridPos(h=1, w=24, x=0, y=0)),
                g.TimeSeries(title="ts", description="d", unit="s", gridPos=g.GridPos(h=8, w=12, x=0, y=1),
                             targets=[prom("up", "{{job}}")], dataSource={"type": "prometheus", "uid": "x"},
                             thresholds=steps((None, "green"), (1, "red"))),
                stat("s", "d", "short", [prom("up", instant=True)])],
    ).auto_panel_ids()


def test_grafanalib_alone_fails_the_schema_and_the_normalised_document_passes(
        grafana_schema: Callable[..., Any]) -> None:
    errors = grafana_schema("v11.6", "dashboard")
    raw = to_plain(sample())
    assert raw["schemaVersion"] == 12
    assert any("Additional properties" in e for e in errors(raw))
    assert errors(normalise_dashboard(sample())) == []


def test_legacy_fields_go_and_the_schema_version_is_grafana_11_6s() -> None:
    doc = normalise_dashboard(sample())
    assert doc["schemaVersion"] == SCHEMA_VERSION == 41
    for legacy in ("rows", "style", "hideControls", "sharedCrosshair", "__inputs", "gnetId", "id"):
        assert legacy not in doc
    ts = doc["panels"][1]
    for legacy in ("span", "height", "error", "editable", "minSpan", "maxDataPoints", "cacheTimeout"):
        assert legacy not in ts
    assert None not in ts["fieldConfig"]["defaults"]["custom"].values()
    assert "time_options" not in doc["timepicker"]


def test_thresholds_become_plain_steps_with_a_numeric_first_value() -> None:
    ts = normalise_dashboard(sample())["panels"][1]
    assert to_plain(steps((None, "green"), (1, "red")))[0]["value"] == "null"  # grafanalib's legacy form
    assert ts["fieldConfig"]["defaults"]["thresholds"] == {
        "mode": "absolute", "steps": [{"color": "green", "value": 0}, {"color": "red", "value": 1.0}]}
    bad = {"type": "timeseries", "fieldConfig": {"defaults": {"thresholds": {
        "steps": [{"color": "green", "value": None}, {"color": "red", "value": "null"}]}}},
        "options": {"tooltip": {}}}
    with pytest.raises(ValueError, match="threshold step 1 needs a number"):
        normalise_panel(bad)


def test_targets_keep_only_their_datasources_query_fields() -> None:
    raw = to_plain(timeseries("t", "d", "s", [prom("up", "{{job}}")]))
    assert {"target", "metric", "step", "query", "intervalFactor"} <= set(raw["targets"][0])
    (t,) = normalise_panel(raw)["targets"]
    assert t == {"datasource": {"type": "prometheus", "uid": "${datasource}"}, "editorMode": "code",
                 "expr": "up", "format": "time_series", "instant": False, "legendFormat": "{{job}}",
                 "range": True, "refId": "A"}
    (lt,) = normalise_panel(to_plain(timeseries("t", "d", "short", [loki('{a="b"}')])))["targets"]
    assert lt == {"datasource": {"type": "loki", "uid": "${loki}"}, "editorMode": "code",
                  "expr": '{a="b"}', "queryType": "range", "refId": "A"}


def test_fields_grafana_11_panels_require_are_filled_in() -> None:
    doc = normalise_dashboard(sample())
    ts, st = doc["panels"][1], doc["panels"][2]
    assert ts["options"]["legend"]["showLegend"] is True
    assert (st["options"]["wideLayout"], st["options"]["showPercentChange"]) == (True, False)
    assert st["targets"][0]["range"] is False


def test_variables_keep_their_schema_fields_and_all_reads_all() -> None:
    variables = {v["name"]: v for v in normalise_dashboard(sample())["templating"]["list"]}
    ds, machine = variables["datasource"], variables["machine"]
    assert "current" not in ds and "options" not in ds and ds["type"] == "datasource"
    assert machine["current"] == {"text": "All", "value": "$__all"}
    for legacy in ("useTags", "tagsQuery", "tagValuesQuery", "auto", "auto_min", "auto_count"):
        assert legacy not in machine
