"""Every panel query parses and reads only what fleetobs emits or records."""

from __future__ import annotations

import re
from typing import Any

import pytest

from fleetobs import catalog
from fleetobs.generate import promql
from fleetobs.generate.dashboards import logql
from fleetobs.generate.dashboards.queries import BUILTINS, PanelQuery, queries, substitute, variables_in
from fleetobs.generate.prometheus import recording

VALUES = {"datasource": "prometheus-mainpc", "loki": "loki-mainpc", "machine": "mainpc",
          "group": "language_stack_gpu", "agent": "TinyLlamaServiceEnhanced",
          "__rate_interval": "1m", "__interval": "15s", "__range": "1h", "__auto": "1m"}
KNOWN = catalog.all_exposed_names() | recording.names()


def all_queries(docs: dict[str, dict[str, Any]]) -> list[PanelQuery]:
    return [q for doc in docs.values() for q in queries(doc)]


def test_every_promql_query_parses_and_reads_only_catalog_metrics_or_recording_rules(
        docs: dict[str, dict[str, Any]]) -> None:
    read: set[str] = set()
    prom = [q for q in all_queries(docs) if q.datasource == "prometheus"]
    assert len(prom) > 80
    for q in prom:
        expr = substitute(q.expr, VALUES)
        assert promql.unknown_metrics(expr, KNOWN) == [], f"{q.dashboard}/{q.panel}"
        read |= promql.metric_names(expr)
    # the dashboards do read the recording rules, the SLO windows among them
    assert {"machine_group:fleet_agent_up:ratio", "machine_state:fleet_group_agents:sum",
            "machine_group:fleet_agent_unavailable:ratio_avg3d"} <= read
    assert "ALERTS" in read and promql.is_external("ALERTS")


def test_the_catalog_check_catches_a_metric_nothing_emits() -> None:
    assert promql.unknown_metrics("sum(rate(hub_agent_heartbeats_total[1m]))", KNOWN) == ["hub_agent_heartbeats_total"]


def test_every_logql_query_is_valid(docs: dict[str, dict[str, Any]]) -> None:
    lq = [q for q in all_queries(docs) if q.datasource == "loki"]
    assert len(lq) >= 8
    for q in lq:
        parsed = logql.parse(substitute(q.expr, VALUES))
        assert parsed.log.selector, q
        # with every variable at its "All" value, Loki still gets a non-empty matcher
        logql.parse(substitute(q.expr, {**VALUES, "machine": ".+", "group": ".*", "agent": ".+"}))


_RANGE_FN = re.compile(r"\b(rate|irate|increase|delta|idelta|count_over_time)\((?:[^()\[]|\([^()]*\))*\[([^\]]+)\]")


def test_rates_use_grafanas_rate_interval(docs: dict[str, dict[str, Any]]) -> None:
    found = 0
    for q in all_queries(docs):
        for fn, window in _RANGE_FN.findall(q.expr):
            want = "$__auto" if q.datasource == "loki" else "$__rate_interval"
            assert window.strip() == want, f"{q.dashboard}/{q.panel}: {fn}(...[{window}])"
            found += 1
    assert found > 30


def test_queries_use_only_the_dashboards_variables(docs: dict[str, dict[str, Any]]) -> None:
    for uid, doc in docs.items():
        defined = {v["name"] for v in doc["templating"]["list"]} | set(BUILTINS)
        for q in queries(doc):
            assert variables_in(q.expr) <= defined, f"{uid}/{q.panel}"


def test_substitute_replaces_both_forms_and_refuses_unknown_names() -> None:
    assert substitute('x{a=~"$machine", b="${agent}"}[$__rate_interval]', VALUES) == \
        'x{a=~"mainpc", b="TinyLlamaServiceEnhanced"}[1m]'
    with pytest.raises(KeyError, match=r"\$nope"):
        substitute("up{x=\"$nope\"}", VALUES)
