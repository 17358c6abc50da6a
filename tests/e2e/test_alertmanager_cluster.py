"""The generated alertmanager.yml on a real two-node cluster (gossip on loopback): an alert
both machines' Prometheus send to both nodes is notified once; with one node dead the
other still notifies. Alerts are posted over the API as Prometheus posts them."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleetobs.generate.prometheus.alertmanager import alertmanager_config
from fleetobs.testing.alertmanager import PEER_TIMEOUT_SECONDS, AlertmanagerCluster
from fleetobs.testing.binaries import require_binary
from fleetobs.testing.webhook import WebhookReceiver, describe
from fleetobs.topology.load import load_topology

pytestmark = [pytest.mark.slow, pytest.mark.binaries]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[AlertmanagerCluster, WebhookReceiver]]:
    require_binary("prometheus-alertmanager", "alertmanager")
    topo = load_topology(None)
    fast = topo.alerting.fast(group_wait="1s", group_interval="5s")
    with WebhookReceiver() as hook:
        config = alertmanager_config(topo, config=fast, webhook_url=hook.url)
        work: Path = tmp_path_factory.mktemp("am-cluster")
        with AlertmanagerCluster(config, work) as am:
            yield am, hook


def agent_down(agent: str) -> dict[str, object]:
    now = dt.datetime.now(dt.UTC)
    return {"labels": {"alertname": "AgentDown", "machine": "mainpc", "group": "memory_stack", "agent": agent,
                       "severity": "critical", "state": "down"},
            "annotations": {"summary": f"Agent {agent} is down"},
            "startsAt": now.isoformat(), "endsAt": (now + dt.timedelta(minutes=5)).isoformat()}


def test_an_alert_both_nodes_receive_is_notified_once(cluster: tuple[AlertmanagerCluster, WebhookReceiver]) -> None:
    am, hook = cluster
    mark = hook.mark()
    for node in am.nodes:  # what both machines' Prometheus do
        node.post_alerts([agent_down("MemoryClient")])
    hook.wait_for("AgentDown", timeout=20, since=mark, agent="MemoryClient")
    time.sleep(PEER_TIMEOUT_SECONDS + 2)  # the second node's turn has come and gone
    got = hook.notifications(mark)
    assert len(got) == 1, describe(got)
    assert got[0].body["receiver"] == "page"


def test_the_other_node_notifies_when_one_is_dead(cluster: tuple[AlertmanagerCluster, WebhookReceiver]) -> None:
    am, hook = cluster
    am.nodes[0].stop()
    mark = hook.mark()
    for node in am.nodes:
        if node.proc is not None and node.proc.poll() is None:
            node.post_alerts([agent_down("KnowledgeBase")])
    note = hook.wait_for("AgentDown", timeout=20 + PEER_TIMEOUT_SECONDS, since=mark, agent="KnowledgeBase")
    assert note.sender == am.nodes[1].url
