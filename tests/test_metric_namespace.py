"""Everything fleetobs emits is in the catalog: one namespace, nothing invented on the side.

The real system's rules used six metric namespaces nothing emitted; here the emitters
are scraped for real and every family must be a catalog entry.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fleetobs.catalog import BY_NAME, CATALOG
from fleetobs.settings import load_settings
from fleetobs.testing.loki import LokiStandIn
from hub.app import plugin_factories
from hub.testing import HubHarness

REPO = Path(__file__).resolve().parent.parent
_TYPE = re.compile(r"^# TYPE (\S+) (\S+)$", re.M)
_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]", re.M)


def catalog_entry(family: str) -> str | None:
    """The catalog name a text-format family belongs to (counters drop ``_total`` in TYPE)."""
    for candidate in (family, f"{family}_total", family.removesuffix("_info")):
        if candidate in BY_NAME:
            return candidate
    return None


def check_exposition(text: str) -> set[str]:
    families = dict(_TYPE.findall(text))
    assert families, "no metric families in the exposition"
    stray = sorted(f for f in families if catalog_entry(f) is None)
    assert stray == [], f"emitted but not in fleetobs/catalog.py: {stray}"
    outside = sorted({s for s in _SAMPLE.findall(text) if not s.startswith("fleet_")})
    assert outside == [], f"samples outside the fleet_ namespace: {outside}"
    return {e for f in families if (e := catalog_entry(f))}


def test_the_catalog_check_catches_strays() -> None:
    with pytest.raises(AssertionError, match="agent_health_status"):
        check_exposition("# TYPE agent_health_status gauge\nagent_health_status 1\n")


@pytest.mark.asyncio
async def test_hub_metrics_with_every_plugin_are_catalog_metrics(tmp_path: Path) -> None:
    with LokiStandIn() as loki:
        settings = load_settings({"FLEET_LOKI_URL": loki.url, "FLEET_DATA_DIR": str(tmp_path),
                                  "FLEET_PROBE_ENABLED": "true"})
        async with HubHarness.build(tmp_path, settings=settings, factories=plugin_factories()) as h:
            await h.client.post("/v1/heartbeats", json={"agent": "NLUAgent"})
            await h.client.post("/v1/heartbeats", json={"agent": "NotInTopology"})
            r = await h.client.get("/metrics")
    assert r.status_code == 200
    seen = check_exposition(r.text)
    assert {"fleet_agent_up", "fleet_agent_state", "fleet_hub_heartbeats_received_total",
            "fleet_log_lines_sent_total", "fleet_probe_targets"} <= seen


def test_gpu_exporter_golden_metrics_are_catalog_metrics() -> None:
    seen = check_exposition((REPO / "tests" / "exporters" / "golden" / "metrics.txt").read_text())
    assert {"fleet_gpu_memory_used_bytes", "fleet_gpu_group_memory_budget_bytes"} <= seen


def test_catalog_is_all_fleet() -> None:
    assert all(m.name.startswith("fleet_") for m in CATALOG)
