"""Panel and query helpers every dashboard uses (grafanalib's modern panel classes).

Every helper takes a title, a description and a unit, so no panel can be built
without them; Prometheus panels read ``${datasource}``, Loki panels ``${loki}``.
:class:`Grid` places panels the way Grafana's grid does (24 columns, rows of panels
under row headers) so the layout is written once, not as coordinates.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import attr
from grafanalib import core as g

PROMETHEUS: dict[str, str] = {"type": "prometheus", "uid": "${datasource}"}
LOKI: dict[str, str] = {"type": "loki", "uid": "${loki}"}

#: Colours of the agent states (Grafana's named palette).
STATE_COLOURS: dict[str, str] = {
    "unmonitored": "text", "up": "green", "degraded": "yellow", "suspect": "orange", "missing": "red",
    "down": "dark-red",
}


def prom(expr: str, legend: str = "", *, instant: bool = False, table: bool = False) -> g.Target:
    return g.Target(expr=expr, legendFormat=legend, instant=instant, datasource=PROMETHEUS,
                    format="table" if table else "time_series")


def loki(expr: str, legend: str = "") -> g.Target:
    return g.Target(expr=expr, legendFormat=legend, datasource=LOKI)


def _refids(targets: Sequence[g.Target]) -> list[g.Target]:
    return [attr.evolve(t, refId=chr(ord("A") + i)) for i, t in enumerate(targets)]


def steps(*pairs: tuple[float | None, str]) -> list[g.Threshold]:
    """Threshold steps ``(value, colour)``; the first value is None (-Infinity)."""
    return [g.Threshold(colour, i, 0.0 if value is None else float(value))
            for i, (value, colour) in enumerate(pairs)]


GREEN = steps((None, "green"))


def value_map(mapping: Mapping[str, tuple[str, str]]) -> dict[str, Any]:
    """A value mapping ``{raw value: (text, colour)}``."""
    return {"type": "value", "options": {
        raw: {"text": text, "color": colour, "index": i}
        for i, (raw, (text, colour)) in enumerate(mapping.items())}}


def dashboard_link(title: str, url: str) -> g.DashboardLink:
    """A link (panel or data link) to ``url``, carrying the time range."""
    return g.DashboardLink(title=title, type="link", uri=url, keepTime=True, icon="dashboard")


def dashed(names: Sequence[str]) -> dict[str, Any]:
    """An override drawing the series called ``names`` dashed (budgets, limits). Matched by
    name list (``byNames``): both Grafana schemas want the matcher's options to be an
    object, which rules out the ``byRegexp`` / ``byName`` matchers (a string)."""
    return {"matcher": {"id": "byNames", "options": {"mode": "include", "names": sorted(names), "readOnly": True}},
            "properties": [{"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 10]}}]}


def coloured(names_by_colour: Mapping[str, Sequence[str]]) -> list[dict[str, Any]]:
    """Overrides giving the series called ``names`` a fixed colour (``byNames``, see :func:`dashed`)."""
    return [{"matcher": {"id": "byNames", "options": {"mode": "include", "names": sorted(names), "readOnly": True}},
             "properties": [{"id": "color", "value": {"mode": "fixed", "fixedColor": colour}}]}
            for colour, names in names_by_colour.items() if names]


def state_colours(legend: str, **values: Sequence[str]) -> list[dict[str, Any]]:
    """Overrides colouring each agent state's series like the state timelines: ``legend``
    is the panel's legend format with ``{state}`` and the other ``{label}`` s filled from
    ``values`` (every combination)."""
    import itertools

    keys = list(values)
    out: dict[str, list[str]] = {}
    for state, colour in STATE_COLOURS.items():
        for combo in itertools.product(*(values[k] for k in keys)):
            out.setdefault(colour, []).append(legend.format(state=state, **dict(zip(keys, combo, strict=True))))
    return coloured(out)


def _defaults(extra: Mapping[str, Any] | None = None, links: Sequence[g.DashboardLink] = ()) -> dict[str, Any]:
    defaults: dict[str, Any] = dict(extra or {})
    if links:
        defaults["links"] = list(links)
    return {"fieldConfig": {"defaults": defaults}} if defaults else {}


def timeseries(title: str, description: str, unit: str, targets: Sequence[g.Target], *,
               stack: bool = False, bars: bool = False, minimum: float | None = None,
               maximum: float | None = None, thresholds: list[g.Threshold] | None = None,
               threshold_line: bool = False, overrides: Sequence[dict[str, Any]] = (),
               links: Sequence[g.DashboardLink] = ()) -> g.TimeSeries:
    extra: dict[str, Any] = {k: v for k, v in (("min", minimum), ("max", maximum)) if v is not None}
    return g.TimeSeries(
        title=title, description=description, unit=unit, dataSource=PROMETHEUS
        if all(t.datasource is PROMETHEUS for t in targets) else LOKI,
        targets=_refids(targets), stacking={"mode": "normal", "group": "A"} if stack else {},
        drawStyle="bars" if bars else "line", fillOpacity=60 if (stack or bars) else 10,
        lineWidth=1, showPoints="never", spanNulls=False, tooltipMode="multi",
        legendDisplayMode="list", thresholds=thresholds or GREEN,
        thresholdsStyleMode="dashed" if threshold_line else "off",
        overrides=list(overrides), extraJson=_defaults(extra, links) or None)


def stat(title: str, description: str, unit: str, targets: Sequence[g.Target], *,
         mappings: Sequence[dict[str, Any]] = (), thresholds: list[g.Threshold] | None = None,
         background: bool = False, no_value: str | None = None, text_mode: str = "auto",
         overrides: Sequence[dict[str, Any]] = (), links: Sequence[g.DashboardLink] = ()) -> g.Stat:
    return g.Stat(
        title=title, description=description, format=unit, dataSource=PROMETHEUS,
        targets=_refids(targets), mappings=list(mappings), thresholds=thresholds or GREEN,
        colorMode="background" if background else "value", graphMode="none",
        reduceCalc="lastNotNull", textMode=text_mode, noValue=no_value, overrides=list(overrides),
        extraJson=_defaults({"color": {"mode": "thresholds"}}, links))


def table(title: str, description: str, unit: str, targets: Sequence[g.Target], *,
          transformations: Sequence[dict[str, Any]] = (), mappings: Sequence[dict[str, Any]] = (),
          sort_by: str | None = None, links: Sequence[g.DashboardLink] = (),
          no_value: str | None = None) -> g.Table:
    extra: dict[str, Any] = {"mappings": list(mappings)} if mappings else {}
    if no_value is not None:
        extra["noValue"] = no_value
    return g.Table(
        title=title, description=description, unit=unit, dataSource=PROMETHEUS,
        targets=_refids(targets), transformations=list(transformations),
        sortBy=[g.TableSortByField(displayName=sort_by, desc=True)] if sort_by else [],
        extraJson=_defaults(extra, links) or None)


def state_timeline(title: str, description: str, targets: Sequence[g.Target],
                   mappings: Sequence[dict[str, Any]], unit: str = "none") -> g.StateTimeline:
    return g.StateTimeline(
        title=title, description=description, dataSource=PROMETHEUS, targets=_refids(targets),
        mappings=list(mappings), colorMode="thresholds", thresholds=GREEN, fillOpacity=80, lineWidth=0,
        rowHeight=0.9, showValue="never", mergeValues=True,
        extraJson={"fieldConfig": {"defaults": {"unit": unit}}})


def logs(title: str, description: str, targets: Sequence[g.Target]) -> g.Logs:
    return g.Logs(title=title, description=description, dataSource=LOKI, targets=_refids(targets),
                  showTime=True, showLabels=False, wrapLogMessages=True, enableLogDetails=True,
                  sortOrder="Descending", extraJson={"fieldConfig": {"defaults": {"unit": "none"}}})


def merge_table(*, hide: Sequence[str] = ("Time",), rename: Mapping[str, str] | None = None,
                order: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Transformations for a table built from several instant queries: join the frames
    on their common labels, then hide, rename and order columns."""
    organize: dict[str, Any] = {
        "excludeByName": {h: True for h in hide},
        "renameByName": dict(rename or {}),
        "indexByName": {name: i for i, name in enumerate(order)},
    }
    return [{"id": "merge", "options": {}}, {"id": "organize", "options": organize}]


@dataclass
class Grid:
    """Flows panels into Grafana's 24-column grid, row by row."""

    panels: list[Any] = field(default_factory=list)
    _x: int = 0
    _y: int = 0
    _row_h: int = 0

    def _newline(self) -> None:
        self._y += self._row_h
        self._x, self._row_h = 0, 0

    def row(self, title: str) -> Grid:
        if self._x:
            self._newline()
        self.panels.append(g.RowPanel(title=title, gridPos=g.GridPos(h=1, w=24, x=0, y=self._y)))
        self._y += 1
        return self

    def add(self, panel: Any, w: int, h: int = 8) -> Grid:
        if self._x + w > 24:
            self._newline()
        self.panels.append(attr.evolve(panel, gridPos=g.GridPos(h=h, w=w, x=self._x, y=self._y)))
        self._x += w
        self._row_h = max(self._row_h, h)
        return self
