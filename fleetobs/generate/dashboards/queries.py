"""The queries of generated dashboards, and Grafana's variable substitution.

Tests, the live check and ``fleetobs dashboards preview`` all read queries through
here, so what they run is exactly what Grafana would send: ``$var`` / ``${var}`` and
the built-in interval variables replaced by values.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

#: Grafana's built-in interval variables (all of them durations).
BUILTINS = ("__rate_interval", "__interval", "__range", "__auto")
_VARIABLE = re.compile(r"\$(?:\{(\w+)(?::\w+)?\}|(\w+))")


@dataclass(frozen=True)
class PanelQuery:
    dashboard: str  # uid
    panel: str  # title
    panel_type: str
    ref: str  # refId
    datasource: str  # "prometheus" or "loki"
    expr: str
    instant: bool


def panels(doc: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel of a dashboard, rows' nested panels included (rows themselves not)."""
    for p in doc.get("panels", []):
        if p.get("type") == "row":
            yield from p.get("panels", [])
        else:
            yield p


def queries(doc: Mapping[str, Any]) -> Iterator[PanelQuery]:
    for p in panels(doc):
        for t in p.get("targets", []):
            ds = (t.get("datasource") or p.get("datasource") or {}).get("type", "prometheus")
            yield PanelQuery(doc["uid"], p["title"], p["type"], t["refId"], ds, t["expr"],
                             bool(t.get("instant", False)))


def variables_in(expr: str) -> set[str]:
    return {m.group(1) or m.group(2) for m in _VARIABLE.finditer(expr)}


def substitute(expr: str, values: Mapping[str, str]) -> str:
    """``expr`` with every ``$name`` / ``${name}`` replaced; an unknown name raises."""

    def one(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        if name not in values:
            raise KeyError(f"no value for ${name} in {expr!r}")
        return values[name]

    return _VARIABLE.sub(one, expr)
