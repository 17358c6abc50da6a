from __future__ import annotations

from hub.sync.merge import FleetView, Reject
from hub.sync.records import AgentFacts, AgentRecord, Version, bucket_of


def rec(name: str, epoch: int, seq: int, *, owner: str = "pc2", machine: str | None = None,
        state: str = "up", age: float | None = 1.0) -> AgentRecord:
    return AgentRecord(owner, Version(epoch, seq),
                       AgentFacts(name=name, machine=machine or owner, state=state), age)


def view() -> FleetView:
    return FleetView("mainpc", stale_after=8.0, known_machines=["mainpc", "pc2", "pc3"])


def test_only_strictly_newer_versions_replace_what_is_held() -> None:
    v = view()
    r = v.apply_push("pc2", 5, 10, [rec("a", 5, 3, state="up")], now=100.0)
    assert (r.accepted, r.stale) == (1, 0)
    # a duplicate and an older version are stale; the newer one wins
    r = v.apply_push("pc2", 5, 10, [rec("a", 5, 3, state="down"), rec("a", 5, 2, state="down")],
                     now=100.0)
    assert (r.accepted, r.stale) == (0, 2)
    assert v.owners["pc2"].records["a"].record.facts.state == "up"
    r = v.apply_push("pc2", 5, 10, [rec("a", 5, 4, state="down")], now=100.0)
    assert r.accepted == 1
    assert v.owners["pc2"].records["a"].record.facts.state == "down"


def test_age_becomes_this_hubs_monotonic_time() -> None:
    v = view()
    v.apply_push("pc2", 1, 5, [rec("a", 1, 1, age=2.5), rec("b", 1, 2, age=None)], now=1000.0)
    held = v.owners["pc2"].records
    assert held["a"].seen_at == 997.5
    assert held["b"].seen_at is None


def test_forged_owner_and_claims_on_this_hubs_agents_are_refused() -> None:
    v = view()
    r = v.apply_push("pc2", 1, 9, [
        rec("x", 1, 1, owner="pc3"),  # pc2 sends pc3's record
        rec("y", 1, 2, owner="pc2", machine="pc3"),  # pc2 claims an agent on pc3
        rec("z", 1, 3, owner="mainpc"),  # claims to own this hub's agents
        rec("w", 1, 4, owner="pc2", machine="mainpc"),
        rec("ok", 1, 5),
    ], now=1.0)
    assert r.rejected == {Reject.FORGED: 2, Reject.SELF: 2}
    assert r.accepted == 1
    assert set(v.owners["pc2"].records) == {"ok"}
    # a body claiming to come from this hub is refused whole
    r = v.apply_push("mainpc", 1, 9, [rec("a", 1, 1, owner="mainpc")], now=1.0)
    assert r.refused and r.rejected == {Reject.SELF: 1}
    assert "mainpc" not in v.owners


def test_versions_outside_the_bodys_epoch_or_as_of_are_refused() -> None:
    v = view()
    r = v.apply_push("pc2", 3, 10, [rec("a", 2, 1), rec("b", 3, 11), rec("c", 3, 10)], now=1.0)
    assert r.rejected == {Reject.BAD_VERSION: 2}
    assert set(v.owners["pc2"].records) == {"c"}


def test_unknown_machines_are_refused() -> None:
    v = view()
    r = v.apply_push("nowhere", 1, 1, [rec("a", 1, 1, owner="nowhere")], now=1.0)
    assert r.refused and r.rejected == {Reject.UNKNOWN_MACHINE: 1}
    assert v.owners == {}


def test_an_older_epoch_is_stale_while_the_current_one_is_heard() -> None:
    v = view()
    v.apply_push("pc2", 9, 1, [rec("a", 9, 1, state="up")], now=100.0)
    r = v.apply_push("pc2", 8, 50, [rec("a", 8, 50, state="down")], now=101.0)
    assert r.refused and r.rejected == {Reject.STALE_EPOCH: 1}
    assert v.owners["pc2"].records["a"].record.facts.state == "up"
    # ...but an owner that came back with a lower epoch (wiped disk, clock set back)
    # is believed once its old run has been silent longer than stale_after
    r = v.apply_push("pc2", 8, 2, [rec("a", 8, 2, state="down")], now=120.0)
    assert not r.refused and r.accepted == 1
    assert v.owners["pc2"].epoch == 8


def test_a_new_epoch_keeps_last_known_records_until_reconciled() -> None:
    v = view()
    v.apply_push("pc2", 1, 2, [rec("a", 1, 1), rec("gone", 1, 2)], now=1.0, complete=True)
    assert v.owners["pc2"].synced
    r = v.apply_push("pc2", 2, 1, [rec("a", 2, 1, state="degraded")], now=2.0)
    assert r.need_full and v.owners["pc2"].restarts == 1
    assert set(v.owners["pc2"].records) == {"a", "gone"}  # last known, not forgotten


def test_bucket_replacement_drops_only_what_the_owner_no_longer_has() -> None:
    v = view()
    v.apply_push("pc2", 1, 3, [rec("a", 1, 1), rec("b", 1, 2), rec("c", 1, 3)], now=1.0)
    buckets = 1
    # a record held with a version above the body's as_of (it came by a later push
    # that overtook this body) must survive the replacement
    v.apply_push("pc2", 1, 9, [rec("c", 1, 9)], now=1.0)
    r = v.apply_push("pc2", 1, 5, [rec("a", 1, 1)], now=1.0, buckets=buckets,
                     replace=[bucket_of("a", buckets)], complete=True)
    assert r.removed == 1  # b went; c (seq 9 > as_of 5) stays
    assert set(v.owners["pc2"].records) == {"a", "c"}
    assert not r.need_full


def test_digest_comparison_reports_differing_buckets_and_marks_synced() -> None:
    from hub.sync.records import bucket_digests
    v = view()
    held = [rec(f"n{i}", 1, i + 1) for i in range(20)]
    v.apply_push("pc2", 1, 20, held, now=1.0)
    digests = bucket_digests(((r.name, r.version) for r in held), 8)
    diff, res = v.differing("pc2", 1, digests, now=1.0)
    assert diff == [] and not res.refused and v.owners["pc2"].synced
    changed = [*held[:-1], rec("n19", 1, 21)]
    digests = bucket_digests(((r.name, r.version) for r in changed), 8)
    diff, _ = v.differing("pc2", 1, digests, now=1.0)
    assert diff == [bucket_of("n19", 8)]


def test_freshness_follows_the_last_valid_body() -> None:
    v = view()
    v.apply_push("pc2", 1, 1, [rec("a", 1, 1)], now=10.0)
    assert v.fresh("pc2", 18.0)
    assert not v.fresh("pc2", 18.5)
    assert not v.fresh("pc3", 10.0)
