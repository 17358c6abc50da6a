"""/metrics: catalog names only, valid exposition (promtool), right values, fast renderer
agrees with prometheus_client's parser."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from fleetobs import catalog
from fleetobs.testing.binaries import require_binary
from fleetobs.topology.load import load_topology
from hub.liveness import STATES, LivenessPolicy
from hub.metrics import RequestStats, render_agents
from hub.observation import Observation
from hub.registry import Registry
from hub.testing import HubHarness


async def scrape(tmp_path: Path) -> str:
    async with HubHarness.build(tmp_path) as h:
        await h.client.post("/v1/heartbeats", json=[
            {"agent": "MemoryClient"}, {"agent": "KnowledgeBase", "status": "degraded"},
            {"agent": "Ghost"}, {"agent": "ResourceManager"}])
        await h.client.post("/v1/heartbeats", content=b"junk", headers={"content-type": "application/json"})
        h.advance(3)
        r = await h.client.get("/metrics")
        assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
        return r.text


@pytest.mark.asyncio
async def test_every_family_is_in_the_hub_catalog_with_its_type(tmp_path: Path) -> None:
    text = await scrape(tmp_path)
    hub_names = {m.name for m in catalog.HUB}
    seen = set()
    for fam in text_string_to_metric_families(text):
        name = fam.name + "_total" if fam.type == "counter" else fam.name
        assert name in hub_names, name
        spec = catalog.spec(name)
        assert fam.type == ("gauge" if spec.kind == "stateset" else spec.kind), name
        assert fam.documentation == spec.help
        for s in fam.samples:
            assert set(s.labels) - {"le"} <= set(spec.labels), (name, s.labels)
        seen.add(name)
    # Every hub metric is exposed (request latency included: /v1/heartbeats was called).
    assert seen == hub_names


@pytest.mark.binaries
@pytest.mark.asyncio
async def test_promtool_accepts_the_exposition(tmp_path: Path) -> None:
    promtool = require_binary("promtool")
    text = await scrape(tmp_path)
    r = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True,
                       check=False, timeout=30)
    # promtool exits 0 on lint-clean input; any line it prints is a problem.
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.strip() == "" and r.stderr.strip() == ""


def test_state_is_one_hot_for_every_agent() -> None:
    reg = Registry(load_topology(None), "mainpc", LivenessPolicy())
    reg.record(Observation(agent="MemoryClient", machine="mainpc"), 0.0, 0.0)
    reg.record(Observation(agent="Ghost", machine="mainpc"), 0.0, 0.0)
    reg.judge_all(100.0, 100.0)
    text = render_agents(reg.snapshot(), "mainpc", 100.0)
    per_agent: dict[str, list[float]] = {}
    for fam in text_string_to_metric_families(text):
        if fam.name == "fleet_agent_state":
            for s in fam.samples:
                per_agent.setdefault(s.labels["agent"], []).append(s.value)
    assert len(per_agent) == 55  # 54 expected + Ghost
    assert all(sorted(v) == [0] * (len(STATES) - 1) + [1] for v in per_agent.values())


def test_group_counts_add_up() -> None:
    reg = Registry(load_topology(None), "mainpc", LivenessPolicy())
    reg.record(Observation(agent="MemoryClient", machine="mainpc"), 0.0, 0.0)
    text = render_agents(reg.snapshot(), "mainpc", 1.0)
    counts = {(s.labels["group"], s.labels["state"]): s.value
              for fam in text_string_to_metric_families(text) if fam.name == "fleet_group_agents"
              for s in fam.samples}
    assert sum(counts.values()) == 54
    in_group = len([a for a in load_topology(None).agents_in("memory_stack")])
    assert counts[("memory_stack", "up")] == 1
    assert counts[("memory_stack", "missing")] == in_group - 1


def test_request_histogram_buckets_are_cumulative() -> None:
    rs = RequestStats(buckets=(0.1, 1.0))
    for seconds in (0.05, 0.5, 0.5, 5.0):
        rs.observe("GET", "/x", 200, seconds)
    fam = rs.family()
    got = {(s.name, s.labels.get("le")): s.value for s in fam.samples}
    assert got[("fleet_hub_request_duration_seconds_bucket", "0.1")] == 1
    assert got[("fleet_hub_request_duration_seconds_bucket", "1.0")] == 3
    assert got[("fleet_hub_request_duration_seconds_bucket", "+Inf")] == 4
    assert got[("fleet_hub_request_duration_seconds_count", None)] == 4
    assert got[("fleet_hub_request_duration_seconds_sum", None)] == pytest.approx(6.05)
