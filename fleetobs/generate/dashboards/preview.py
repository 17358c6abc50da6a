"""``fleetobs dashboards preview``: every generated dashboard drawn from a live Prometheus.

Grafana is not installable here; this shows what a person would see in it: each
dashboard's panels, laid out on Grafana's grid, with the data their queries return
now (fleetobs/generate/dashboards/livedata.py, draw.py).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from fleetobs.generate.dashboards import dashboards
from fleetobs.generate.dashboards.livedata import PreviewError, PrometheusAPI, check_url, fetch, resolve_variables

if TYPE_CHECKING:
    from fleetobs.generate.dashboards.draw import PanelReport
    from fleetobs.topology.model import Topology

INSTALL_HINT = "the preview draws with matplotlib: pip install 'fleetobs[preview]'"


@dataclass(frozen=True)
class Picture:
    uid: str
    path: Path
    variables: dict[str, str]
    panels: list[PanelReport]


def require_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise PreviewError(INSTALL_HINT) from None


def preview(topology: Topology, prometheus_url: str, output: Path, *, uids: Sequence[str] = (),
            variables: Mapping[str, str] | None = None, since_seconds: float = 3600.0,
            now: float | None = None) -> list[Picture]:
    """Draw the dashboards ``uids`` (all when empty) into ``output/<uid>.png``."""
    check_url(prometheus_url)  # bad input first, before anything slow
    docs = dashboards(topology)
    unknown = [u for u in uids if u not in docs]
    if unknown:
        raise PreviewError(f"--dashboard {unknown[0]}: unknown dashboard (choose from {', '.join(docs)})")
    require_matplotlib()
    from fleetobs.generate.dashboards.draw import draw

    api = PrometheusAPI(prometheus_url)
    try:
        version = api.check()
        scrape = api.scrape_interval()
        end = time.time() if now is None else now
        start = end - since_seconds
        pictures = []
        for uid in uids or list(docs):
            doc = docs[uid]
            values = resolve_variables(doc, api, variables or {})
            shown = ", ".join(f"{k}={v}" for k, v in values.items() if v and k not in ("datasource", "loki"))
            data = fetch(doc, api, values, start, end, scrape)
            path = output / f"{uid}.png"
            stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(end))
            reports = draw(doc, data, path, f"{shown}  ·  last {since_seconds / 60:g} min to {stamp}  ·  "
                                            f"Prometheus {version}", (start, end))
            pictures.append(Picture(uid, path, values, reports))
        return pictures
    finally:
        api.close()
