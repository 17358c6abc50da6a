"""Deterministic sync scenarios: a fake clock and the in-memory faulty network."""

from __future__ import annotations

import random

import pytest

from hub.sync.engine import UNKNOWN, SyncEngine
from hub.sync.records import AgentFacts
from hub.sync.testing import Cluster
from hub.testing import FakeClock

MACHINES = ["mainpc", "pc2", "pc3"]


def populate(cl: Cluster, n: int = 5) -> None:
    for m, eng in cl.engines.items():
        for i in range(n):
            eng.put(AgentFacts(name=f"{m}-agent{i}", machine=m, state="up", status="ok",
                               interval_seconds=5.0), eng.clock())


def states(eng: SyncEngine, owner: str) -> dict[str, str]:
    return {p.facts.name: p.state for p in eng.peer_agents() if p.owner == owner}


def link(eng: SyncEngine, to: str) -> object:
    return next(lk for lk in eng.links if lk.url == f"mem://{to}")


async def settled(machines: list[str] | None = None, **kw: object) -> tuple[Cluster, FakeClock]:
    clock = FakeClock()
    cl = Cluster(machines or MACHINES, clock, **kw)  # type: ignore[arg-type]
    populate(cl)
    await cl.run(1.0)
    assert cl.diverging() == []
    return cl, clock


@pytest.mark.asyncio
async def test_three_hubs_hold_each_others_records_after_the_first_exchange() -> None:
    cl, _ = await settled()
    for m, eng in cl.engines.items():
        held = {p.owner for p in eng.peer_agents()}
        assert held == set(MACHINES) - {m}
        assert all(eng.peer_up(lk) for lk in eng.links)
        # nobody ever sent a hub its own records back
        assert eng.server.stats.rejected == {}


@pytest.mark.asyncio
async def test_a_change_reaches_every_peer_within_the_coalescing_window() -> None:
    cl, _ = await settled()
    main = cl.engines["mainpc"]
    main.put(AgentFacts(name="mainpc-agent1", machine="mainpc", state="down", status="ok",
                        interval_seconds=5.0), main.clock())
    await cl.run(0.3)  # push_min_interval is 0.2 s
    assert states(cl.engines["pc2"], "mainpc")["mainpc-agent1"] == "down"
    assert states(cl.engines["pc3"], "mainpc")["mainpc-agent1"] == "down"


@pytest.mark.asyncio
async def test_a_burst_of_changes_coalesces_into_few_pushes() -> None:
    cl, _ = await settled(["mainpc", "pc2"])
    main = cl.engines["mainpc"]
    lk = main.links[0]
    before = lk.stats.exchanges["push"]
    for i in range(200):
        main.put(AgentFacts(name=f"burst{i}", machine="mainpc", state="up", interval_seconds=5.0),
                 main.clock())
        if i % 20 == 0:
            await cl.step()  # steps come as fast as the loop; pushes must not
    await cl.run(0.3)
    assert lk.stats.exchanges["push"] - before <= 2
    assert cl.diverging() == []


@pytest.mark.asyncio
async def test_refreshes_and_keepalives_flow_every_refresh_period() -> None:
    cl, _ = await settled(["mainpc", "pc2"])
    main, pc2 = cl.engines["mainpc"], cl.engines["pc2"]
    main.put(AgentFacts(name="mainpc-agent0", machine="mainpc", state="up", status="ok",
                        interval_seconds=5.0), main.clock())  # seen again: age resets
    await cl.run(2.1)
    ages = {p.facts.name: p.age_seconds for p in pc2.peer_agents()}
    assert ages["mainpc-agent0"] == pytest.approx(2.1, abs=0.25)
    assert ages["mainpc-agent1"] == pytest.approx(3.1, abs=0.25)
    await cl.run(20.0)  # nothing changes, yet the peer stays fresh
    assert all(p.fresh for p in pc2.peer_agents())


@pytest.mark.asyncio
async def test_partition_makes_peer_agents_unknown_with_last_state_and_age_then_heals() -> None:
    cl, _ = await settled()
    main, pc2 = cl.engines["mainpc"], cl.engines["pc2"]
    main.put(AgentFacts(name="mainpc-agent2", machine="mainpc", state="degraded", status="error",
                        interval_seconds=5.0), main.clock())
    await cl.run(0.3)
    cl.net.link("mainpc", "mem://pc2").cut = True
    cl.net.link("pc2", "mem://mainpc").cut = True
    await cl.run(9.0)
    seen = {p.facts.name: p for p in pc2.peer_agents() if p.owner == "mainpc"}
    assert {p.state for p in seen.values()} == {UNKNOWN}
    assert seen["mainpc-agent2"].last_state == "degraded"
    assert seen["mainpc-agent2"].age_seconds == pytest.approx(9.3, abs=0.15)
    assert not pc2.peer_up(link(pc2, "mainpc"))  # type: ignore[arg-type]
    assert not main.peer_up(link(main, "pc2"))  # type: ignore[arg-type]
    # the third hub still reaches both: no other signal anywhere
    assert all(cl.engines["pc3"].peer_up(lk) for lk in cl.engines["pc3"].links)
    assert states(cl.engines["pc3"], "mainpc")["mainpc-agent2"] == "degraded"
    # only the owner judges down: the owner changes meanwhile, the peer learns on heal
    main.put(AgentFacts(name="mainpc-agent3", machine="mainpc", state="down", status="ok",
                        interval_seconds=5.0), main.clock())
    cl.net.heal()
    await cl.run(2.0)
    assert cl.diverging() == []
    assert states(pc2, "mainpc")["mainpc-agent3"] == "down"
    assert pc2.peer_up(link(pc2, "mainpc"))  # type: ignore[arg-type]
    summary = pc2.summary(__import__("collections").Counter({"up": 5}), {})
    assert [m["fresh"] for m in summary["machines"]] == [True, True, True]


@pytest.mark.asyncio
async def test_one_way_cut_is_seen_on_both_sides_and_heals() -> None:
    cl, _ = await settled(["mainpc", "pc2"])
    main, pc2 = cl.engines["mainpc"], cl.engines["pc2"]
    cl.net.link("mainpc", "mem://pc2").cut = True  # mainpc -> pc2 only
    await cl.run(9.0)
    assert set(states(pc2, "mainpc").values()) == {UNKNOWN}
    assert set(states(main, "pc2").values()) == {"up"}  # pc2 -> mainpc still flows
    assert not main.peer_up(main.links[0])  # its pushes fail
    assert not pc2.peer_up(pc2.links[0])  # it hears nothing
    assert main.links[0].stats.failures["timeout"] > 0
    cl.net.heal()
    await cl.run(2.0)
    assert set(states(pc2, "mainpc").values()) == {"up"}
    assert main.peer_up(main.links[0]) and pc2.peer_up(pc2.links[0])


@pytest.mark.asyncio
async def test_lost_replies_duplicates_and_late_deliveries_are_harmless() -> None:
    clock = FakeClock()
    cl = Cluster(["mainpc", "pc2"], clock, rng=random.Random(7))
    f = cl.net.link("mainpc", "mem://pc2")
    f.drop_reply, f.duplicate, f.delay = 0.3, 0.3, 0.3
    main = cl.engines["mainpc"]
    for step in range(60):
        main.put(AgentFacts(name=f"a{step % 7}", machine="mainpc", state=("up", "down")[step % 2],
                            interval_seconds=5.0), main.clock())
        await cl.run(0.1)
        if step % 10 == 9 and step < 40:
            cl.net.deliver_held()  # old bodies arrive after newer ones
    cl.net.heal()
    late = cl.net.held
    cl.net.held = []
    for i in range(7):  # newer than anything still in flight
        main.put(AgentFacts(name=f"a{i}", machine="mainpc", state="degraded",
                            interval_seconds=5.0), main.clock())
    await cl.run(2.0)
    assert cl.diverging() == []
    assert late  # some old bodies are still in flight: they arrive now, out of order
    cl.net.held = late
    assert cl.net.deliver_held() == len(late)
    assert cl.diverging() == []


@pytest.mark.asyncio
async def test_owner_restart_replaces_its_records_including_ones_it_no_longer_has() -> None:
    cl, _ = await settled(["mainpc", "pc2"])
    pc2 = cl.engines["pc2"]
    assert "mainpc-agent4" in states(pc2, "mainpc")
    new = cl.start("mainpc", epoch=2)  # a new run: the unknown agent4 is gone
    for i in range(4):
        new.put(AgentFacts(name=f"mainpc-agent{i}", machine="mainpc", state="missing",
                           interval_seconds=5.0), None)
    await cl.run(1.0)
    assert cl.diverging() == []
    assert set(states(pc2, "mainpc")) == {f"mainpc-agent{i}" for i in range(4)}
    view = pc2.fleet.owners["mainpc"]
    assert (view.epoch, view.restarts, view.synced) == (2, 1, True)


@pytest.mark.asyncio
async def test_a_restarted_receiver_is_refilled_without_waiting_for_a_full_period() -> None:
    cl, _ = await settled(["mainpc", "pc2"])
    cl.start("pc2", epoch=2)  # pc2 comes back empty
    assert cl.engines["pc2"].fleet.owners == {}
    await cl.run(2.5)  # one refresh push reveals the new epoch, then a reconciliation
    assert cl.diverging() == []


@pytest.mark.asyncio
async def test_kill_mid_reconciliation_then_restart_converges() -> None:
    clock = FakeClock()
    from hub.sync.peer import SyncConfig
    cl = Cluster(["mainpc", "pc2"], clock, config=SyncConfig(max_records_per_push=3, buckets=8))
    main = cl.engines["mainpc"]
    for i in range(40):
        main.put(AgentFacts(name=f"a{i}", machine="mainpc", state="up", interval_seconds=5.0), 0.0)
    lk = main.links[0]
    # let the reconcile request and a couple of bucket pushes through, then pc2 dies
    sent: list[str] = []
    real = cl.net.servers["mem://pc2"].handle

    def dying(path: str, body: bytes, auth: str | None) -> tuple[int, bytes]:
        sent.append(path)
        if len(sent) > 3:
            cl.stop("pc2")
            return 503, b"{}"
        return real(path, body, auth)

    cl.net.servers["mem://pc2"].handle = dying  # type: ignore[method-assign]
    await lk.step()
    assert not lk.ok and lk.needs_full
    partial = cl.engines["pc2"].fleet.owners["mainpc"]
    assert 0 < len(partial.records) < 40 and not partial.synced
    cl.start("pc2", epoch=2)
    await cl.run(2.0)
    assert cl.diverging() == []


@pytest.mark.asyncio
async def test_clock_offsets_between_machines_change_nothing() -> None:
    clock = FakeClock()
    cl = Cluster(["mainpc", "pc2"], clock, skew={"mainpc": 3600.0, "pc2": -3600.0})
    main, pc2 = cl.engines["mainpc"], cl.engines["pc2"]
    main.put(AgentFacts(name="x", machine="mainpc", state="up", interval_seconds=5.0),
             main.clock() - 4.0)  # seen 4 s ago on mainpc's clock
    await cl.run(1.0)
    (agent,) = pc2.peer_agents()
    assert agent.age_seconds == pytest.approx(5.0, abs=0.15)
    assert agent.fresh


@pytest.mark.asyncio
async def test_wrong_token_between_hubs_fails_with_a_reason_and_no_data() -> None:
    clock = FakeClock()
    cl = Cluster(["mainpc", "pc2"], clock, token="right")
    cl.engines["mainpc"].links[0]._headers = {"authorization": "Bearer wrong"}
    populate(cl)
    await cl.run(2.0)
    assert cl.engines["mainpc"].links[0].stats.failures["http_401"] > 0
    assert "mainpc" not in cl.engines["pc2"].fleet.owners
    assert cl.engines["pc2"].server.stats.rejected["unauthorized"] > 0


@pytest.mark.asyncio
async def test_a_peer_url_pointing_back_at_this_hub_is_a_failure_not_a_loop() -> None:
    clock = FakeClock()
    cl = Cluster(["mainpc", "pc2"], clock)
    main = cl.engines["mainpc"]
    main.links[0].url = "mem://mainpc"
    await cl.run(1.0)
    assert main.links[0].stats.failures["self_owner"] > 0
    assert "mainpc" not in main.fleet.owners
    assert main.server.stats.rejected["self_owner"] > 0


@pytest.mark.asyncio
async def test_big_state_travels_in_bodies_under_the_receivers_limit() -> None:
    from hub.sync.peer import SyncConfig
    clock = FakeClock()
    cfg = SyncConfig(max_body_bytes=16 * 1024, buckets=64)
    cl = Cluster(["mainpc", "pc2"], clock, config=cfg)
    cl.engines["pc2"].server.max_body_bytes = 16 * 1024  # a bigger body would be 413
    main = cl.engines["mainpc"]
    for i in range(300):
        main.put(AgentFacts(name=f"agent{i}", machine="mainpc", state="degraded",
                            reason="r" * 256, interval_seconds=5.0), main.clock())
    await cl.run(1.0)
    assert cl.diverging() == []
    assert cl.engines["pc2"].server.stats.rejected == {}
    assert main.links[0].stats.bytes_sent > 300 * 256  # it all went, in several bodies
    for i in range(300):  # a delta bigger than one body goes in several pushes
        main.put(AgentFacts(name=f"agent{i}", machine="mainpc", state="up",
                            reason="q" * 256, interval_seconds=5.0), main.clock())
    await cl.run(2.0)
    assert cl.diverging() == []
    assert cl.engines["pc2"].server.stats.rejected == {}


@pytest.mark.asyncio
async def test_a_peer_with_a_smaller_body_limit_still_gets_everything() -> None:
    clock = FakeClock()
    cl = Cluster(["mainpc", "pc2"], clock)
    cl.engines["pc2"].server.max_body_bytes = 40 * 1024  # ours assume ~1 MiB
    main = cl.engines["mainpc"]
    for i in range(400):
        main.put(AgentFacts(name=f"agent{i}", machine="mainpc", state="up",
                            reason="r" * 200, interval_seconds=5.0), main.clock())
    await cl.run(6.0)
    assert cl.diverging() == []
    assert main.links[0].stats.failures["http_413"] >= 1
    assert main.links[0].body_budget < 40 * 1024
