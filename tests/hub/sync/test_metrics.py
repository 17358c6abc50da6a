"""Sync metrics: catalog names only, valid exposition (promtool), values that follow the links."""

from __future__ import annotations

import subprocess

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import CollectorRegistry

from fleetobs import catalog
from fleetobs.testing.binaries import require_binary
from hub.sync.metrics import SyncCollector
from hub.sync.records import AgentFacts
from hub.sync.testing import Cluster
from hub.testing import FakeClock


def scrape(cl: Cluster, machine: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    reg = CollectorRegistry(auto_describe=False)
    reg.register(SyncCollector(cl.engines[machine]))
    text = generate_latest(reg).decode()
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    sync_names = {m.name for m in catalog.SYNC}
    for fam in text_string_to_metric_families(text):
        name = fam.name + "_total" if fam.type == "counter" else fam.name
        assert name in sync_names, name
        spec = catalog.spec(name)
        assert fam.documentation == spec.help
        for s in fam.samples:
            assert set(s.labels) - {"le"} <= set(spec.labels)
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


async def partitioned() -> Cluster:
    clock = FakeClock()
    cl = Cluster(["mainpc", "pc2"], clock)
    for m, eng in cl.engines.items():
        eng.put(AgentFacts(name="x", machine=m, state="up", interval_seconds=5.0), eng.clock())
    await cl.run(1.0)
    return cl


def one(series: dict[tuple[tuple[str, str], ...], float], **labels: str) -> float:
    want = tuple(sorted(labels.items()))
    (value,) = [v for k, v in series.items() if set(want) <= set(k)]
    return value


@pytest.mark.asyncio
async def test_peer_up_drops_to_zero_on_a_partition_and_failures_are_counted() -> None:
    cl = await partitioned()
    m = scrape(cl, "mainpc")
    assert one(m["fleet_peer_up"], peer="pc2", machine="mainpc") == 1
    assert one(m["fleet_sync_bytes_total"], peer="pc2", direction="sent") > 0
    assert one(m["fleet_sync_bytes_total"], peer="pc2", direction="received") > 0
    assert one(m["fleet_sync_duration_seconds_count"], peer="pc2", kind="reconcile") >= 1
    assert one(m["fleet_sync_records_received_total"], peer="pc2", outcome="accepted") == 1
    cl.net.link("mainpc", "mem://pc2").cut = True
    cl.net.link("pc2", "mem://mainpc").cut = True
    await cl.run(9.0)
    m = scrape(cl, "mainpc")
    assert one(m["fleet_peer_up"], peer="pc2") == 0
    assert one(m["fleet_sync_failures_total"], peer="pc2", reason="timeout") > 0
    assert one(m["fleet_sync_last_success_age_seconds"], peer="pc2") > 8
    assert one(m["fleet_sync_peer_data_age_seconds"], peer="pc2") > 8


@pytest.mark.binaries
@pytest.mark.asyncio
async def test_promtool_accepts_the_sync_exposition() -> None:
    promtool = require_binary("promtool")
    cl = await partitioned()
    reg = CollectorRegistry(auto_describe=False)
    reg.register(SyncCollector(cl.engines["mainpc"]))
    r = subprocess.run([promtool, "check", "metrics"], input=generate_latest(reg).decode(),
                       capture_output=True, text=True, check=False, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.strip() == "" and r.stderr.strip() == ""
