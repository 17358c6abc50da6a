"""What a PromQL expression reads, from a real parser (promql-parser, Prometheus' grammar).

Rules and dashboards may only read catalog metrics and the recording rules fleetobs
defines; :func:`unknown_metrics` is how generators and tests hold them to that.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import promql_parser

#: Series that are not fleetobs' own but that every Prometheus has: scrape health, the
#: self-monitoring of Prometheus and Alertmanager, and ALERTS (the rules' alert states).
EXTERNAL_PREFIXES = ("prometheus_", "alertmanager_")
EXTERNAL_NAMES = frozenset({"up", "ALERTS", "scrape_duration_seconds", "scrape_samples_scraped",
                            "scrape_series_added", "scrape_samples_post_metric_relabeling"})


class PromQLError(ValueError):
    """An expression the parser refuses."""


def parse(expr: str) -> Any:
    try:
        return promql_parser.parse(expr)
    except (ValueError, TypeError) as exc:
        raise PromQLError(f"invalid PromQL {expr!r}: {exc}") from None


def _selectors(node: Any) -> Iterator[Any]:
    kind = type(node).__name__
    if kind == "VectorSelector":
        yield node
    elif kind == "MatrixSelector":
        yield node.vector_selector
    elif kind == "BinaryExpr":
        yield from _selectors(node.lhs)
        yield from _selectors(node.rhs)
    elif kind == "Call":
        for arg in node.args:
            yield from _selectors(arg)
    elif kind == "AggregateExpr":
        yield from _selectors(node.expr)
        if node.param is not None:
            yield from _selectors(node.param)
    elif kind in ("ParenExpr", "UnaryExpr", "SubqueryExpr"):
        yield from _selectors(node.expr)
    # NumberLiteral, StringLiteral: no series


def _name(selector: Any) -> str | None:
    if selector.name:
        return str(selector.name)
    for m in selector.matchers.matchers:  # {__name__="..."}
        if m.name == "__name__" and str(m.op) in ("=", "MatchOp.Equal") and m.value:
            return str(m.value)
    return None


def metric_names(expr: str) -> frozenset[str]:
    """Names of every series ``expr`` selects; a selector without a fixed name raises."""
    names: set[str] = set()
    for sel in _selectors(parse(expr)):
        name = _name(sel)
        if name is None:
            raise PromQLError(f"{expr!r}: a selector without a metric name ({sel}) reads anything")
        names.add(name)
    return frozenset(names)


def is_external(name: str) -> bool:
    return name in EXTERNAL_NAMES or name.startswith(EXTERNAL_PREFIXES)


def unknown_metrics(expr: str, known: Iterable[str]) -> list[str]:
    """Names ``expr`` reads that are neither in ``known`` (catalog series and recording
    rules) nor Prometheus' and Alertmanager's own; sorted."""
    allowed = frozenset(known)
    return sorted(n for n in metric_names(expr) if n not in allowed and not is_external(n))
