"""From grafanalib 0.7.1's JSON to a Grafana 11.6 dashboard (schemaVersion 41).

grafanalib's modern panel classes (TimeSeries, Stat, Table, StateTimeline, Logs) build
the right ``type``, ``options`` and ``fieldConfig``, but every object still carries the
fields of its Grafana 5 ancestors (``span``, ``height``, ``error``, ``rows``, ``style``,
``hideControls``...), unset values as ``null``, Graphite fields on Prometheus queries
(``target``, ``metric``, ``step``), and legacy threshold steps (``op``, ``yaxis``,
``value: "null"``). Grafana's schemas (tests/fixtures/schemas/grafana) refuse all of
those. This step keeps, per object, only what the schema defines, fills the few
fields the 11.x panel schemas require and grafanalib does not know
(``legend.showLegend``, ``wideLayout``...), and stamps the schema version.

Rules are explicit (not read from the schemas), so the schema tests check them.
"""

from __future__ import annotations

import json
from typing import Any

from grafanalib._gen import DashboardEncoder

#: Grafana 11.6's own dashboard schema version (what it saves), so it migrates nothing.
SCHEMA_VERSION = 41

_DASHBOARD_KEYS = frozenset({
    "uid", "title", "description", "tags", "timezone", "editable", "graphTooltip", "time",
    "timepicker", "fiscalYearStartMonth", "liveNow", "weekStart", "refresh", "schemaVersion",
    "version", "panels", "templating", "annotations", "links"})
_PANEL_KEYS = frozenset({
    "type", "id", "pluginVersion", "targets", "title", "description", "transparent",
    "datasource", "gridPos", "links", "repeat", "repeatDirection", "maxPerRow", "maxDataPoints",
    "transformations", "interval", "timeFrom", "timeShift", "hideTimeOverride", "libraryPanel",
    "cacheTimeout", "queryCachingTTL", "options", "fieldConfig"})
_ROW_KEYS = frozenset({"type", "collapsed", "title", "datasource", "gridPos", "id", "panels", "repeat"})
_FIELD_DEFAULT_KEYS = frozenset({
    "displayName", "description", "unit", "decimals", "min", "max", "mappings", "thresholds",
    "color", "links", "noValue", "custom"})
_TIMEPICKER_KEYS = frozenset({"hidden", "refresh_intervals", "nowDelay"})
_VARIABLE_KEYS = frozenset({
    "type", "name", "label", "hide", "skipUrlSync", "description", "query", "datasource",
    "current", "multi", "options", "refresh", "sort", "includeAll", "allValue", "regex"})
_INTERVAL_VARIABLE_KEYS = frozenset({"auto", "auto_min", "auto_count"})
#: Query fields per datasource type (Grafana's prometheus and loki dataquery schemas).
_TARGET_KEYS = {
    "prometheus": frozenset({"expr", "instant", "range", "format", "legendFormat", "refId",
                             "hide", "datasource", "interval", "editorMode"}),
    "loki": frozenset({"expr", "legendFormat", "maxLines", "queryType", "refId", "hide",
                       "datasource", "editorMode"}),
}
_THRESHOLD_KEYS = frozenset({"color", "value"})


def to_plain(obj: Any) -> Any:
    """grafanalib objects -> plain JSON values (dicts, lists, str, numbers)."""
    return json.loads(json.dumps(obj, cls=DashboardEncoder))


def _pick(d: dict[str, Any], keys: frozenset[str]) -> dict[str, Any]:
    """``d`` restricted to ``keys``, without unset (None) values."""
    return {k: v for k, v in d.items() if k in keys and v is not None}


def _thresholds(t: dict[str, Any]) -> dict[str, Any]:
    steps = [_pick(s, _THRESHOLD_KEYS) for s in t.get("steps", [])]
    # Grafana reads the first step as -Infinity whatever its value (and saves null);
    # 11.6's schema wants a number there, grafanalib writes the string "null".
    for i, step in enumerate(steps):
        if i == 0:
            step["value"] = 0
        elif not isinstance(step.get("value"), int | float):
            raise ValueError(f"threshold step {i} needs a number, not {step.get('value')!r}")
    return {"mode": t.get("mode") or "absolute", "steps": steps}


def _field_config(fc: dict[str, Any]) -> dict[str, Any]:
    defaults = _pick(fc.get("defaults", {}), _FIELD_DEFAULT_KEYS)
    if "thresholds" in defaults:
        defaults["thresholds"] = _thresholds(defaults["thresholds"])
    if not isinstance(defaults.get("color"), dict):
        defaults.pop("color", None)
    if "custom" in defaults:
        defaults["custom"] = {k: v for k, v in defaults["custom"].items() if v is not None}
    return {"defaults": defaults, "overrides": list(fc.get("overrides", []))}


def _panel_options(kind: str, options: dict[str, Any], custom: dict[str, Any]) -> None:
    """Fill what Grafana 11's panel schemas require that grafanalib does not write."""
    legend = options.get("legend")
    if isinstance(legend, dict):
        legend.setdefault("showLegend", legend.get("displayMode") != "hidden")
        legend.setdefault("calcs", [])
    if kind == "timeseries":
        options["tooltip"].setdefault("sort", "none")
    elif kind == "stat":
        options.setdefault("wideLayout", True)
        options.setdefault("showPercentChange", False)
        options.setdefault("percentChangeColorMode", "standard")
    elif kind == "table":
        options.setdefault("frameIndex", 0)
        # Replaced by cellOptions in Grafana 10. cellOptions is left out: both schemas
        # refuse {"type": "auto"} (their oneOf variants do not pin "type").
        custom.pop("displayMode", None)
        custom.setdefault("inspect", False)
    elif kind == "logs":
        options.setdefault("showLogContextToggle", False)
    elif kind == "state-timeline":
        options["tooltip"].setdefault("sort", "none")


def _target(t: dict[str, Any], fallback_ds: dict[str, Any] | None) -> dict[str, Any]:
    ds = t.get("datasource") or fallback_ds or {}
    kind = ds.get("type", "prometheus")
    out = _pick(t, _TARGET_KEYS[kind])
    out.setdefault("editorMode", "code")  # the queries are written as code, not built
    if kind == "prometheus":
        out["range"] = not out.get("instant", False)
    else:
        out.pop("instant", None)
        out.setdefault("queryType", "range")
    for k in ("legendFormat", "interval"):
        if not out.get(k):
            out.pop(k, None)
    if out.get("hide") is False:
        del out["hide"]
    return out


def normalise_panel(p: dict[str, Any]) -> dict[str, Any]:
    if p.get("type") == "row":
        row = _pick(p, _ROW_KEYS)
        row.setdefault("collapsed", False)
        row["panels"] = [normalise_panel(c) for c in p.get("panels", [])]
        return row
    out = _pick(p, _PANEL_KEYS)
    for k in ("repeatDirection", "maxPerRow", "repeat", "interval", "timeFrom", "timeShift"):
        if out.get(k) in ("", None):
            out.pop(k, None)
    # grafanalib's fixed 100 points; without it Grafana fits the points to the panel width.
    out.pop("maxDataPoints", None)
    if not out.get("hideTimeOverride"):
        out.pop("hideTimeOverride", None)
    if not out.get("transparent"):
        out.pop("transparent", None)
    fc = _field_config(out.get("fieldConfig", {}))
    out["fieldConfig"] = fc
    options = out.setdefault("options", {})
    _panel_options(out["type"], options, fc["defaults"].setdefault("custom", {}))
    out["targets"] = [_target(t, out.get("datasource")) for t in out.get("targets", [])]
    return out


def _variable(v: dict[str, Any]) -> dict[str, Any]:
    keys = _VARIABLE_KEYS | (_INTERVAL_VARIABLE_KEYS if v.get("type") == "interval" else frozenset())
    out = _pick(v, keys)
    current = out.get("current") or {}
    if current.get("value") is None:
        out.pop("current", None)
    else:
        value = current["value"]
        out["current"] = {"text": "All" if value == "$__all" else current.get("text", value),
                          "value": value}
    if out.get("type") == "datasource":
        out.pop("options", None)
    return out


def normalise_dashboard(dashboard: Any) -> dict[str, Any]:
    """A grafanalib ``Dashboard`` (or its JSON) as a Grafana 11.6 dashboard document."""
    raw = to_plain(dashboard)
    out = _pick(raw, _DASHBOARD_KEYS)
    out["schemaVersion"] = SCHEMA_VERSION
    out["timepicker"] = _pick(raw.get("timepicker", {}), _TIMEPICKER_KEYS)
    out["panels"] = [normalise_panel(p) for p in raw.get("panels", [])]
    out["templating"] = {"list": [_variable(v) for v in raw.get("templating", {}).get("list", [])]}
    out["annotations"] = {"list": list(raw.get("annotations", {}).get("list", []))}
    return out
