"""GPU summaries travelling with sync: engines on the in-memory network, a fake clock."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hub.sync.merge import FleetView
from hub.sync.protocol import MAX_GPUS, HubIdentity
from hub.sync.records import AgentFacts
from hub.sync.server import PUSH_PATH, RECONCILE_PATH, SyncServer
from hub.sync.testing import Cluster
from hub.testing import FakeClock

GIB = 1024**3


def summary(machine: str, seq: int, free_gib: float = 10.0, age: float | None = 1.0,
            **over: Any) -> dict[str, Any]:
    s: dict[str, Any] = {
        "machine": machine, "seq": seq, "age_seconds": age, "error": None, "nvml_up": True,
        "nvml_reason": None,
        "gpus": [{"index": 0, "uuid": f"GPU-{machine}", "name": "NVIDIA GeForce RTX 4090",
                  "memory_total_bytes": 24 * GIB, "memory_used_bytes": 24 * GIB - int(free_gib * GIB),
                  "memory_reserved_bytes": 0, "memory_free_bytes": int(free_gib * GIB),
                  "utilization_ratio": 0.5}],
        "groups": [{"group": "vision_gpu", "service": "vision-gpu", "used_bytes": 2 * GIB,
                    "budget_bytes": 6 * GIB}],
    }
    s.update(over)
    return s


class Source:
    """What a hub's GPU plugin would hand sync (a settable summary)."""

    def __init__(self) -> None:
        self.value: dict[str, Any] | None = None

    def __call__(self) -> dict[str, Any] | None:
        return self.value


def cluster(machines: list[str] | None = None) -> tuple[Cluster, dict[str, Source]]:
    c = Cluster(machines or ["mainpc", "pc2"], FakeClock())
    sources = {}
    for m, eng in c.engines.items():
        sources[m] = eng.local_gpus = Source()
    return c, sources


def held_free(c: Cluster, at: str, owner: str) -> int | None:
    held = c.engines[at].gpus.held.get(owner)
    return None if held is None else held.summary.gpus[0].memory_free_bytes


@pytest.mark.asyncio
async def test_a_summary_reaches_the_peer_with_its_age_on_the_peers_clock() -> None:
    c, src = cluster()
    src["mainpc"].value = summary("mainpc", 1, free_gib=10, age=3.0)
    await c.run(1.0)
    assert held_free(c, "pc2", "mainpc") == 10 * GIB
    (peer,) = c.engines["pc2"].peer_gpus()
    assert peer.fresh and peer.summary.machine == "mainpc"
    # 3 s old when sent in the first exchange (at +0.1 s), 0.9 s more since
    assert peer.age_seconds == pytest.approx(3.9)
    assert "pc2" not in c.engines["pc2"].gpus.held  # nobody sends us our own


@pytest.mark.asyncio
async def test_an_updated_summary_replaces_the_held_one_and_is_sent_once() -> None:
    c, src = cluster()
    src["mainpc"].value = summary("mainpc", 1, free_gib=10)
    await c.run(1.0)
    src["mainpc"].value = summary("mainpc", 2, free_gib=4)
    await c.run(2.5)  # the next push (refresh) carries it
    assert held_free(c, "pc2", "mainpc") == 4 * GIB
    (link,) = c.engines["mainpc"].links
    assert link.gpus_acked == 2
    sent = link.stats.bytes_sent
    await c.run(2.5)  # acknowledged: the keepalive push goes without it
    assert link.stats.bytes_sent - sent < 300


def test_an_old_or_duplicate_summary_does_not_replace_a_newer_one() -> None:
    s = _server()
    assert _post(s, summary("pc2", 5, free_gib=5))[0] == 200
    for old in (summary("pc2", 4, free_gib=1), summary("pc2", 5, free_gib=2)):
        status, reply = _post(s, old)
        assert status == 200 and reply["rejected"] == 0
        assert s.gpus.held["pc2"].summary.gpus[0].memory_free_bytes == 5 * GIB
    # a new run of the owner (higher epoch) starts its seq again: it wins
    assert _post(s, summary("pc2", 1, free_gib=3), epoch=4)[0] == 200
    assert s.gpus.held["pc2"].summary.gpus[0].memory_free_bytes == 3 * GIB


def test_a_summary_claiming_the_receivers_machine_or_another_owner_is_rejected() -> None:
    s = _server(machines=["mainpc", "pc2", "pc3"])
    status, reply = _post(s, summary("mainpc", 9))
    assert status == 200 and reply["rejected"] == 1  # the records still go through
    status, reply = _post(s, summary("pc3", 9))
    assert status == 200 and reply["rejected"] == 1
    status, _ = s.handle(RECONCILE_PATH, json.dumps({
        "sender": {"machine": "pc2", "epoch": 3}, "as_of": 1, "count": 0, "digests": [""],
        "gpus": summary("mainpc", 10)}).encode(), None)
    assert status == 200
    assert s.gpus.held == {}
    assert (s.stats.rejected["self_owner"], s.stats.rejected["forged_owner"]) == (2, 1)


@pytest.mark.asyncio
async def test_a_partition_leaves_the_last_summary_marked_not_fresh_with_its_age() -> None:
    c, src = cluster()
    src["mainpc"].value = summary("mainpc", 1, age=0.0)
    await c.run(1.0)
    for a, b in (("mainpc", "pc2"), ("pc2", "mainpc")):
        c.net.link(a, c.urls[b]).cut = True
    src["mainpc"].value = summary("mainpc", 2, free_gib=1)
    await c.run(12.0)
    (peer,) = c.engines["pc2"].peer_gpus()
    assert not peer.fresh
    assert peer.summary.seq == 1 and peer.age_seconds == pytest.approx(12.9)
    c.net.heal()
    await c.run(1.5)
    (peer,) = c.engines["pc2"].peer_gpus()
    assert peer.fresh and peer.summary.seq == 2  # the reconnect's reconciliation carries it


@pytest.mark.parametrize("gpus", [
    "junk",
    {"machine": "pc2"},
    summary("pc2", -1),
    summary("pc2", 1, age=-3),
    summary("pc2", 1, extra="field"),
    summary("pc2", 1, error="x" * 10_000),
    summary("pc2", 1, gpus=summary("pc2", 1)["gpus"] * (MAX_GPUS + 1)),
    summary("pc2", 1, groups=[{"group": "bad name!", "used_bytes": 1, "budget_bytes": 1}]),
    summary("pc2", 1, gpus=[{**summary("pc2", 1)["gpus"][0], "utilization_ratio": 7}]),
    summary("pc2", 1, gpus=[{**summary("pc2", 1)["gpus"][0], "memory_free_bytes": 2**64}]),
])
@pytest.mark.parametrize("path", [PUSH_PATH, RECONCILE_PATH])
def test_a_junk_gpu_field_is_422_and_holds_nothing(gpus: Any, path: str) -> None:
    s = _server()
    body: dict[str, Any] = {"sender": {"machine": "pc2", "epoch": 3}, "as_of": 1, "gpus": gpus}
    if path == RECONCILE_PATH:
        body.update(count=0, digests=[""])
    status, reply = s.handle(path, json.dumps(body).encode(), None)
    assert status == 422, reply
    assert json.loads(reply)["detail"].startswith("gpus")
    assert s.gpus.held == {} and s.fleet.owners == {}


class _OldServer(SyncServer):
    """A hub from before GPU summaries: its models forbid the unknown ``gpus`` field."""

    def handle(self, path: str, body: bytes, authorization: str | None) -> tuple[int, bytes]:
        try:
            has_gpus = "gpus" in json.loads(body)
        except ValueError:
            has_gpus = False
        if has_gpus:
            return self._error(422, "invalid", "gpus: Extra inputs are not permitted")
        return super().handle(path, body, authorization)


@pytest.mark.asyncio
async def test_an_older_peer_that_refuses_the_field_still_gets_the_records() -> None:
    c, src = cluster()
    old = c.engines["pc2"]
    c.net.attach(c.urls["pc2"], _OldServer(old.fleet, old.identity, old.clock, None))
    src["mainpc"].value = summary("mainpc", 1)
    c.engines["mainpc"].put(AgentFacts(name="a", machine="mainpc", state="up", status="ok",
                                       interval_seconds=5.0), c.clock.monotonic())
    await c.run(3.0)
    (link,) = c.engines["mainpc"].links
    assert not link.send_gpus and link.ok
    assert "a" in old.fleet.owners["mainpc"].records
    assert old.gpus.held == {}


@pytest.mark.asyncio
async def test_no_gpu_view_means_no_field_on_the_wire() -> None:
    c, _ = cluster()
    old = c.engines["pc2"]
    c.net.attach(c.urls["pc2"], _OldServer(old.fleet, old.identity, old.clock, None))
    await c.run(3.0)
    (link,) = c.engines["mainpc"].links
    assert link.ok and link.send_gpus and link.stats.failures == {}


def test_an_invalid_local_summary_is_not_sent() -> None:
    c, src = cluster()
    src["mainpc"].value = summary("mainpc", 1, gpus="not a list")
    assert c.engines["mainpc"].gpu_summary() is None
    src["mainpc"].value = summary("mainpc", 1)
    summ = c.engines["mainpc"].gpu_summary()
    assert summ is not None and summ.seq == 1


def _server(machines: list[str] | None = None) -> SyncServer:
    fleet = FleetView("mainpc", stale_after=8.0, known_machines=machines or ["mainpc", "pc2"])
    return SyncServer(fleet, lambda: HubIdentity(machine="mainpc", epoch=42),
                      clock=lambda: 500.0, token=None)


def _post(s: SyncServer, gpus: dict[str, Any], epoch: int = 3) -> tuple[int, dict[str, Any]]:
    body = {"sender": {"machine": "pc2", "epoch": epoch}, "as_of": 1, "records": [], "gpus": gpus}
    status, reply = s.handle(PUSH_PATH, json.dumps(body).encode(), None)
    return status, json.loads(reply)
