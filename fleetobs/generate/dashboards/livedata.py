"""What each panel of a generated dashboard would show: its queries run against a live
Prometheus the way Grafana runs them (variables resolved from the data, ``$__interval``
and ``$__rate_interval`` from the time range and the scrape interval).

Used by ``fleetobs dashboards preview``; Loki panels are listed, not queried (the
preview reads Prometheus only).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
import yaml

from fleetobs.generate.dashboards.queries import substitute

#: Points per time series panel (Grafana fits about one per pixel; a picture needs fewer).
POINTS = 120
_LABEL_VALUES = re.compile(r"label_values\((.*),\s*(\w+)\)\s*$", re.S)
_LEGEND = re.compile(r"\{\{\s*(\w+)\s*\}\}")


class PreviewError(Exception):
    """Bad input for a preview (URL, Prometheus, variables); one line, for the CLI."""


@dataclass(frozen=True)
class Series:
    name: str  # the legend Grafana would show
    labels: dict[str, str]
    points: list[tuple[float, float]]  # (unix seconds, value); NaN kept out

    @property
    def last(self) -> float | None:
        return self.points[-1][1] if self.points else None


@dataclass
class PanelData:
    panel: dict[str, Any]
    targets: list[list[Series]] = field(default_factory=list)  # per target, in refId order
    note: str = ""  # why there is nothing to draw (Loki), else ""

    @property
    def series(self) -> list[Series]:
        return [s for t in self.targets for s in t]


def check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PreviewError(f"--prometheus {url!r}: not an http(s) URL")
    return url.rstrip("/")


def duration(text: str) -> float:
    """``30m``, ``1h30m``... in seconds."""
    text = text.strip()
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise PreviewError(f"{text!r}: not a duration (e.g. 30m, 1h, 2h30m)")
    return sum(float(n) * units[u] for n, u in parts)


def prom_duration(seconds: float) -> str:
    return f"{max(1, round(seconds))}s"


class PrometheusAPI:
    def __init__(self, url: str, *, timeout: float = 10.0, client: httpx.Client | None = None) -> None:
        self.url = check_url(url)
        self._client = client or httpx.Client(timeout=timeout)

    def close(self) -> None:
        self._client.close()

    def _get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        try:
            r = self._client.get(self.url + path, params=params)
        except httpx.HTTPError as exc:
            raise PreviewError(f"cannot reach Prometheus at {self.url}: {exc}") from None
        try:
            body = r.json()
        except ValueError:
            raise PreviewError(f"{self.url}{path}: HTTP {r.status_code}, not a Prometheus API answer") from None
        if not isinstance(body, dict) or body.get("status") != "success":
            error = body.get("error") if isinstance(body, dict) else None
            raise PreviewError(f"{self.url}{path}: {error or f'HTTP {r.status_code}'}")
        return body["data"]

    def check(self) -> str:
        """Prometheus' version; raises when the URL is not a Prometheus."""
        data = self._get("/api/v1/status/buildinfo")
        return str(data.get("version", "?"))

    def scrape_interval(self) -> float:
        config = yaml.safe_load(self._get("/api/v1/status/config").get("yaml", "")) or {}
        return duration(str((config.get("global") or {}).get("scrape_interval", "1m")))

    def label_values(self, label: str, match: str) -> list[str]:
        return sorted(str(v) for v in self._get(f"/api/v1/label/{label}/values", {"match[]": match}))

    def query(self, expr: str, at: float) -> list[dict[str, Any]]:
        return list(self._get("/api/v1/query", {"query": expr, "time": f"{at:.3f}"})["result"])

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
        params = {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"}
        return list(self._get("/api/v1/query_range", params)["result"])


def resolve_variables(doc: Mapping[str, Any], api: PrometheusAPI, given: Mapping[str, str]) -> dict[str, str]:
    """A value for each query variable, in order (so chained queries see the earlier ones):
    the one given, else "All" (its regex) when allowed, else the first value in the data."""
    values: dict[str, str] = {}
    for v in doc["templating"]["list"]:
        name = v["name"]
        if v["type"] == "datasource":
            values[name] = given.get(name, "")
            continue
        if name in given:
            values[name] = given[name]
        elif v.get("includeAll"):
            values[name] = v.get("allValue", ".*")
        else:
            m = _LABEL_VALUES.match(v["query"])
            if m is None:
                raise PreviewError(f"variable {name}: cannot read query {v['query']!r}")
            found = api.label_values(m.group(2), substitute(m.group(1), values))
            if not found:
                raise PreviewError(f"variable {name}: no values in Prometheus for {v['query']}")
            values[name] = found[0]
    return values


def intervals(start: float, end: float, scrape: float) -> dict[str, str]:
    step = max((end - start) / POINTS, scrape)
    return {"__interval": prom_duration(step), "__rate_interval": prom_duration(max(step + scrape, 4 * scrape)),
            "__range": prom_duration(end - start), "__auto": prom_duration(step)}


def legend(fmt: str, labels: Mapping[str, str]) -> str:
    if fmt:
        return _LEGEND.sub(lambda m: labels.get(m.group(1), ""), fmt).strip()
    shown = {k: v for k, v in labels.items() if k != "__name__"}
    inner = ", ".join(f'{k}="{v}"' for k, v in sorted(shown.items()))
    return f"{labels.get('__name__', '')}{{{inner}}}" if inner or "__name__" not in labels else labels["__name__"]


def _series(result: list[dict[str, Any]], fmt: str) -> list[Series]:
    out = []
    for r in result:
        raw = r["values"] if "values" in r else [r["value"]]
        points = [(float(t), float(v)) for t, v in raw if math.isfinite(float(v))]
        out.append(Series(legend(fmt, r["metric"]), dict(r["metric"]), points))
    return out


def fetch(doc: Mapping[str, Any], api: PrometheusAPI, values: Mapping[str, str], start: float,
          end: float, scrape: float) -> list[PanelData]:
    """Every panel (rows included, as headers) with what its queries return."""
    subst = {**values, **intervals(start, end, scrape)}
    step = max((end - start) / POINTS, scrape)
    out: list[PanelData] = []
    for p in doc["panels"]:
        data = PanelData(p)
        out.append(data)
        if p["type"] == "row":
            continue
        for t in p["targets"]:
            if t["datasource"]["type"] != "prometheus":
                data.note = "Loki panel: not previewed (the preview reads Prometheus only)"
                continue
            expr = substitute(t["expr"], subst)
            # Stats and tables show the last value: one instant query (Grafana reduces a range).
            if t.get("instant") or p["type"] in ("stat", "table"):
                data.targets.append(_series(api.query(expr, end), t.get("legendFormat", "")))
            else:
                data.targets.append(_series(api.query_range(expr, start, end, step), t.get("legendFormat", "")))
    return out
