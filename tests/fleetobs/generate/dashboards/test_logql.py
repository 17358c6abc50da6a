"""The LogQL validator: accepts the subset the dashboards use, refuses what Loki refuses."""

from __future__ import annotations

import json

import pytest

from fleetobs.generate.dashboards.logql import LogQLError, parse


@pytest.mark.parametrize("query", [
    '{machine="mainpc"}',
    '{machine=~"mainpc|pc2", group=~".*", agent!="x"} |= "agent " != "debug" |~ `a\\d+` !~ "b[0-9]"',
    '{machine=~".+"} | json | level=~"error|critical"',
    '{machine=~".+"} | logfmt | level!="info"',
    'sum by (machine) (count_over_time({machine=~".+"} [1m]))',
    'sum(rate({machine="pc2"} | json | level="error" [5m])) by (agent)',
    'max without (agent) (bytes_over_time({machine="pc2"}[1h30m]))',
])
def test_valid_queries_parse(query: str) -> None:
    parse(query)


@pytest.mark.parametrize(("query", "problem"), [
    ('{machine=~".*"}', "does not match the empty string"),
    ('{group=~".*", agent!="x"}', "does not match the empty string"),
    ('{machine=~"(unclosed"}', "bad regex"),
    ('{machine="a"} |~ "[z-a]"', "bad regex"),
    ('{machine="a"', "expected"),
    ('machine="a"', "expected a stream selector"),
    ('count_over_time({machine="a"})', "expected ["),
    ('count_over_time({machine="a"} [$__auto])', "unexpected"),
    ('count_over_time({machine="a"} [5 minutes])', "bad range [5]"),
    ('count_over_time({machine="a"} [5x])', "bad range"),
    ('sum({machine="a"})', "aggregates a metric query"),
    ('{machine>"a"}', "unexpected"),
    ('{machine="a"} | json extra', "unexpected"),
    ('{machine="a"} |= unquoted', "expected string"),
    ('{machine="a\\q"}', "bad string"),
])
def test_invalid_queries_are_refused_with_a_reason(query: str, problem: str) -> None:
    with pytest.raises(LogQLError) as err:
        parse(query)
    assert problem in str(err.value)


def test_the_parse_keeps_the_structure() -> None:
    q = parse('sum by (machine, agent) (count_over_time({machine=~".+", agent="A"} | json | level=~"error" [2m]))')
    assert q.functions == ("sum", "count_over_time")
    assert (q.range, q.grouping) == ("2m", ("machine", "agent"))
    assert [(m.label, m.op, m.value) for m in q.log.selector] == [("machine", "=~", ".+"), ("agent", "=", "A")]
    assert [(s.kind, s.op) for s in q.log.stages] == [("parser", "json"), ("label", "=~")]


def test_keeps_evaluates_selector_line_filters_and_json_labels_like_loki() -> None:
    stream = {"machine": "mainpc", "agent": "A", "source": "agent"}
    error = json.dumps({"level": "error", "msg": "model not loaded"})
    info = json.dumps({"level": "info", "msg": "agent B up -> down"})
    errors = parse('{machine=~"main.*"} | json | level=~"error|critical"').log
    assert errors.keeps(stream, error) and not errors.keeps(stream, info)
    assert not errors.keeps({**stream, "machine": "pc2"}, error)
    assert not parse('{machine=~"main"}').log.keeps(stream, info)  # stream regexes are anchored
    transitions = parse('{machine="mainpc"} |= "agent B " |~ "up -> (down|missing)"').log
    assert transitions.keeps(stream, info) and not transitions.keeps(stream, error)
    assert not parse('{machine="mainpc"} != "agent B"').log.keeps(stream, info)
    assert parse('{machine="mainpc", group=~".*"}').log.keeps(stream, "x")  # absent label = ""
    assert not parse('{machine="mainpc"} | json | level="error"').log.keeps(stream, "not json")
