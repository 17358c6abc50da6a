"""Every generated dashboard and panel is valid against Grafana's own schemas (11.6 and main)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from fleetobs.generate import links
from fleetobs.generate.dashboards.normalise import SCHEMA_VERSION
from fleetobs.generate.dashboards.queries import panels

VERSIONS = ("v11.6", "main")
#: Panel types with a schema of their own among Grafana's (options, fieldConfig.custom).
SCHEMA_TYPES = ("timeseries", "stat", "table", "logs")
#: Panel types Grafana publishes no JSON schema for in tests/fixtures (checked by the
#: dashboard schema's Panel definition only).
NO_SCHEMA_TYPES = frozenset({"state-timeline"})
MODERN = frozenset({*SCHEMA_TYPES, *NO_SCHEMA_TYPES})


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("uid", links.DASHBOARD_UIDS)
def test_dashboard_is_valid_against_grafanas_schema(docs: dict[str, dict[str, Any]], grafana_schema: Callable[..., Any],
                                                    version: str, uid: str) -> None:
    errors = grafana_schema(version, "dashboard")
    assert errors is not None
    assert errors(docs[uid]) == []
    assert docs[uid]["schemaVersion"] == SCHEMA_VERSION >= 39


@pytest.mark.parametrize("version", VERSIONS)
def test_every_panel_is_valid_against_its_panel_schema(docs: dict[str, dict[str, Any]],
                                                       grafana_schema: Callable[..., Any], version: str) -> None:
    checked: dict[str, int] = {}
    problems: list[str] = []
    for uid, doc in docs.items():
        for p in panels(doc):
            kind = p["type"]
            assert kind in MODERN, f"{uid}/{p['title']}: {kind} is not a modern panel type"
            if kind in NO_SCHEMA_TYPES:
                assert grafana_schema(version, kind.replace("-", "")) is None, f"{kind} has a schema now: check it"
                continue
            options = grafana_schema(version, kind, "Options")
            assert options is not None
            problems += [f"{uid}/{p['title']} options {e}" for e in options(p["options"])]
            custom = grafana_schema(version, kind, "FieldConfig")
            if custom is not None:
                problems += [f"{uid}/{p['title']} custom {e}" for e in custom(p["fieldConfig"]["defaults"]["custom"])]
            checked[kind] = checked.get(kind, 0) + 1
    assert problems == []
    assert set(checked) == set(SCHEMA_TYPES)


@pytest.mark.parametrize("version", VERSIONS)
def test_every_query_is_valid_against_its_datasource_schema(docs: dict[str, dict[str, Any]],
                                                            grafana_schema: Callable[..., Any], version: str) -> None:
    seen: set[str] = set()
    for uid, doc in docs.items():
        for p in panels(doc):
            for t in p["targets"]:
                kind = t["datasource"]["type"]
                errors = grafana_schema(version, kind)
                assert errors is not None, kind
                assert errors(t) == [], f"{uid}/{p['title']}/{t['refId']}"
                seen.add(kind)
    assert seen == {"prometheus", "loki"}


def test_panel_ids_are_unique_and_ref_ids_unique_per_panel(docs: dict[str, dict[str, Any]]) -> None:
    for uid, doc in docs.items():
        ids = [p["id"] for p in doc["panels"]]
        assert len(ids) == len(set(ids)), uid
        for p in panels(doc):
            refs = [t["refId"] for t in p["targets"]]
            assert refs and len(refs) == len(set(refs)), f"{uid}/{p['title']}"


def test_every_panel_has_a_description_and_a_unit(docs: dict[str, dict[str, Any]]) -> None:
    for uid, doc in docs.items():
        for p in panels(doc):
            assert len(p.get("description", "")) > 20, f"{uid}/{p['title']}"
            assert p["fieldConfig"]["defaults"].get("unit"), f"{uid}/{p['title']}"


def test_panels_fit_the_grid_without_overlapping(docs: dict[str, dict[str, Any]]) -> None:
    for uid, doc in docs.items():
        taken: set[tuple[int, int]] = set()
        for p in doc["panels"]:
            pos = p["gridPos"]
            assert pos["x"] + pos["w"] <= 24, f"{uid}/{p.get('title')}"
            cells = {(pos["x"] + i, pos["y"] + j) for i in range(pos["w"]) for j in range(pos["h"])}
            assert not cells & taken, f"{uid}/{p.get('title')} overlaps"
            taken |= cells


def test_datasource_references_resolve_to_variables_of_the_right_plugin(docs: dict[str, dict[str, Any]]) -> None:
    for uid, doc in docs.items():
        plugin_of = {f"${{{v['name']}}}": v["query"] for v in doc["templating"]["list"] if v["type"] == "datasource"}
        assert plugin_of == {"${datasource}": "prometheus", "${loki}": "loki"}
        refs = [p["datasource"] for p in panels(doc)] + [t["datasource"] for p in panels(doc) for t in p["targets"]]
        refs += [v["datasource"] for v in doc["templating"]["list"] if "datasource" in v]
        for ref in refs:
            assert plugin_of.get(ref["uid"]) == ref["type"], f"{uid}: {ref}"
