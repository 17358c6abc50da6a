"""Live: every panel of every dashboard draws real data.

A real Prometheus (Debian's) scrapes both machines' real hubs (probing the simulated
fleet on real sockets, syncing with each other, shipping logs) and GPU exporters (fake
NVML through the real bindings), and evaluates the recording rules. Each panel's
queries, with the variables set to real values (each machine, and "All"), go through
Prometheus' HTTP API and must return finite values. Loki is not installable: each Loki
panel's query must select lines the hubs really shipped to their Loki stand-ins
(evaluated by the LogQL validator's evaluator).
"""

from __future__ import annotations

import math
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from fleetobs.generate import links
from fleetobs.generate.dashboards.logql import parse
from fleetobs.generate.dashboards.queries import PanelQuery, queries, substitute

pytestmark = [pytest.mark.binaries, pytest.mark.slow]

#: Panels that can legitimately be empty here, and why.
EXCEPTIONS: dict[tuple[str, str], str] = {
    (links.GPU, "Uncorrected ECC errors"): "GeForce cards (RTX 4090, RTX 3060) have no ECC: NVML answers "
                                           "not supported and the exporter omits the series",
    (links.GPU, "Why NVML is down"): "present only while NVML is unavailable; it is up here",
}
SETS = ("mainpc", "pc2", "all")


def _finite(result: list[dict[str, Any]]) -> int:
    values = [v for r in result for v in ([r["value"]] if "value" in r else r["values"])]
    return sum(1 for _, v in values if math.isfinite(float(v)))


def run(prom_url: str, q: PanelQuery, expr: str) -> list[dict[str, Any]]:
    """What Grafana asks Prometheus for this query: a range for every query not marked
    instant (stats reduce theirs), the last value for instant ones (tables)."""
    if q.instant:
        params = {"query": expr}
        path = "/api/v1/query"
    else:
        end = time.time()
        params = {"query": expr, "start": f"{end - 12:.3f}", "end": f"{end:.3f}", "step": "2"}
        path = "/api/v1/query_range"
    body = httpx.get(prom_url + path, params=params, timeout=10.0).json()
    assert body["status"] == "success", f"{q.dashboard}/{q.panel}/{q.ref}: {body.get('error')}\n{expr}"
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def finite_values(prom_url: str, q: PanelQuery, expr: str, tries: int = 3) -> int:
    """Finite values the query returns; asked again a second later when there are none
    (a scrape that timed out on a loaded machine makes a target's series stale for a moment)."""
    for attempt in range(tries):
        n = _finite(run(prom_url, q, expr))
        if n or attempt == tries - 1:
            return n
        time.sleep(1.0)
    return 0


@pytest.mark.parametrize("name", SETS)
def test_every_prometheus_panel_returns_data(live: Any, docs: dict[str, dict[str, Any]], name: str) -> None:
    values = live.values(name)
    todo = [(q, substitute(q.expr, values)) for doc in docs.values() for q in queries(doc)
            if q.datasource == "prometheus"]

    def check(item: tuple[PanelQuery, str]) -> int:
        q, expr = item
        return finite_values(live.prom.url, q, expr, tries=1 if (q.dashboard, q.panel) in EXCEPTIONS else 3)

    with ThreadPoolExecutor(4) as pool:  # Prometheus answers queries in parallel
        found = list(pool.map(check, todo))
    empty = [f"{q.dashboard} / {q.panel} / {q.ref}: {expr}" for (q, expr), n in zip(todo, found, strict=True)
             if not n and (q.dashboard, q.panel) not in EXCEPTIONS]
    excepted_with_data = [f"{(q.dashboard, q.panel)}: has data now; take it off EXCEPTIONS"
                          for (q, _), n in zip(todo, found, strict=True) if n and (q.dashboard, q.panel) in EXCEPTIONS]
    assert len(todo) > 80
    assert empty == [], "panels without data:\n" + "\n".join(empty)
    assert excepted_with_data == [], "\n".join(excepted_with_data)


@pytest.mark.parametrize("name", SETS)
def test_every_loki_panel_selects_lines_the_hubs_shipped(live: Any, docs: dict[str, dict[str, Any]],
                                                          name: str) -> None:
    values = live.values(name)
    machines = [values["machine"]] if name != "all" else list(live.fleet.lokis)
    stored = [(s.label_dict, s.line) for m in machines for s in live.fleet.lokis[m].stored]
    assert stored
    checked = 0
    for doc in docs.values():
        for q in queries(doc):
            if q.datasource == "loki":
                log = parse(substitute(q.expr, values)).log
                kept = sum(1 for stream, line in stored if log.keeps(stream, line))
                assert kept, f"{q.dashboard}/{q.panel}: selects none of {len(stored)} lines: {q.expr}"
                checked += 1
    assert checked >= 8


def test_exceptions_name_real_panels_and_say_why(docs: dict[str, dict[str, Any]]) -> None:
    titles = {(q.dashboard, q.panel) for doc in docs.values() for q in queries(doc)}
    for key, reason in EXCEPTIONS.items():
        assert key in titles, key
        assert len(reason) > 20
