"""The preview's pieces that need no Prometheus: units, legends, intervals, table merging."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fleetobs.generate.dashboards import overview
from fleetobs.generate.dashboards.draw import mapped, table_rows
from fleetobs.generate.dashboards.livedata import (
    PanelData,
    PreviewError,
    Series,
    check_url,
    duration,
    intervals,
    legend,
)
from fleetobs.generate.dashboards.queries import panels
from fleetobs.generate.dashboards.units import fmt, is_known
from fleetobs.topology.load import load_topology


@pytest.mark.parametrize(("value", "unit", "text"), [
    (0, "bytes", "0 B"), (512, "bytes", "512 B"), (6.5 * 1024**3, "bytes", "6.5 GiB"),
    (2_500_000, "Bps", "2.5 MB/s"), (0.0042, "s", "4.2 ms"), (2.36, "s", "2.36 s"), (90, "s", "1.5 min"),
    (0.9173, "percentunit", "91.7%"), (2.58, "percentunit", "258%"), (1500, "short", "1.5 k"),
    (3, "short", "3"), (182, "watt", "182 W"), (1.95e9, "hertz", "1.95 GHz"), (61, "celsius", "61 °C"),
    (14.4, "suffix:×", "14.4×"), (0.25, "ops", "0.25 ops/s"), (1, "none", "1"),
])
def test_units_read_like_grafanas(value: float, unit: str, text: str) -> None:
    assert fmt(value, unit) == text


def test_every_unit_the_dashboards_use_is_one_the_preview_knows(docs: dict[str, dict[str, Any]]) -> None:
    for doc in docs.values():
        for p in panels(doc):
            assert is_known(p["fieldConfig"]["defaults"]["unit"]), p["title"]


def test_legends_intervals_durations_and_urls() -> None:
    labels = {"__name__": "m", "machine": "pc2", "peer": "mainpc"}
    assert legend("{{machine}} → {{ peer }}", labels) == "pc2 → mainpc"
    assert legend("", labels) == 'm{machine="pc2", peer="mainpc"}'
    assert intervals(0, 3600, 15) == {"__interval": "30s", "__rate_interval": "60s", "__range": "3600s",
                                      "__auto": "30s"}
    assert intervals(0, 60, 1)["__rate_interval"] == "4s"  # at least 4 scrapes
    assert duration("1h30m") == 5400
    with pytest.raises(PreviewError, match="not a duration"):
        duration("90 minutes")
    assert check_url("http://127.0.0.1:9090/") == "http://127.0.0.1:9090"
    with pytest.raises(PreviewError):
        check_url("127.0.0.1:9090")


def test_a_table_merges_its_queries_on_common_labels_and_organizes_columns() -> None:
    doc = overview.render(load_topology(None))
    (panel,) = [p for p in panels(doc) if p["title"] == "Agents not up, and why"]
    a = {"machine": "mainpc", "group": "g", "agent": "A"}
    data = PanelData(panel, [
        [Series("", {**a, "state": "missing"}, [(1.0, 1.0)]), Series("", {**a, "agent": "B", "state": "degraded"},
                                                                      [(1.0, 1.0)])],
        [Series("", a, [(1.0, 42.0)])],
        [Series("", a, [(1.0, 30.0)]), Series("", {**a, "agent": "B"}, [(1.0, 30.0)])],
    ])
    columns, rows = table_rows(data)
    assert columns == ["machine", "group", "agent", "state", "heard from (ago)", "interval"]
    assert rows == [["mainpc", "g", "A", "missing", "42 s", "30 s"], ["mainpc", "g", "B", "degraded", "", "30 s"]]


def test_value_mappings_give_text_and_colour() -> None:
    defaults = {"mappings": [{"type": "value", "options": {"1": {"text": "up", "color": "green"}}}]}
    assert mapped(defaults, 1.0) == ("up", "#73bf69")
    assert mapped(defaults, 0.0) is None


def test_a_panel_with_a_single_point_draws_over_the_dashboards_range(tmp_path: Path) -> None:
    from fleetobs.generate.dashboards import draw as drawing

    doc = overview.render(load_topology(None))
    data = [PanelData(p, [[Series("x", {}, [(1000.0, 3.0)])] for _ in p.get("targets", [])])
            if p["type"] == "timeseries" else PanelData(p) for p in doc["panels"]]
    reports = drawing.draw(doc, data, tmp_path / "one.png", time_range=(820.0, 1000.0))  # 3 min
    assert (tmp_path / "one.png").stat().st_size > 10_000
    assert sum(r.lines for r in reports if r.kind == "timeseries") >= 4
