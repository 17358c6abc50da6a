"""fleet_agent_degraded_reason: why a degraded agent is degraded, as a bounded label."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from fleetobs.topology.load import load_topology
from hub.liveness import LivenessPolicy
from hub.metrics import reason_label, render_agents
from hub.observation import Observation, Status
from hub.registry import Registry


@pytest.mark.parametrize(("reason", "label"), [
    ("health_checks.ready_signal=false", "health_checks.ready_signal=false"),
    ("health_checks.ready_signal=false, health_checks.redis_connected=false",
     "health_checks.ready_signal=false, health_checks.redis_connected=false"),
    ("status=warning", "status=warning"),
    ("message: Redis at localhost:6379 refused \"connection\"", "other"),  # free text stays out
    ("health_checks.a b=false", "other"),
    (None, "unspecified"),
    ("", "unspecified"),
])
def test_reason_label_is_bounded(reason: str | None, label: str) -> None:
    assert reason_label(reason) == label


def test_only_degraded_agents_have_a_reason_series() -> None:
    reg = Registry(load_topology(None), "mainpc", LivenessPolicy())
    reg.record(Observation(agent="MemoryClient", machine="mainpc", status=Status.DEGRADED,
                           reason="health_checks.ready_signal=false"), 0.0, 0.0)
    reg.record(Observation(agent="KnowledgeBase", machine="mainpc", status=Status.ERROR,
                           reason="message: boom"), 0.0, 0.0)
    reg.record(Observation(agent="NLUAgent", machine="mainpc"), 0.0, 0.0)
    reg.judge_all(1.0, 1.0)
    fams = {f.name: f for f in text_string_to_metric_families(render_agents(reg.snapshot(), "mainpc", 1.0))}
    got = {(s.labels["agent"], s.labels["reason"]): s.value for s in fams["fleet_agent_degraded_reason"].samples}
    assert got == {("MemoryClient", "health_checks.ready_signal=false"): 1.0, ("KnowledgeBase", "other"): 1.0}
