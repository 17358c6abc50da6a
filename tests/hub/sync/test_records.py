from __future__ import annotations

from pathlib import Path

import pytest

from hub.sync.records import AgentFacts, OwnedRecords, Version, bucket_digests, next_epoch


def facts(name: str, state: str = "up", machine: str = "mainpc") -> AgentFacts:
    return AgentFacts(name=name, machine=machine, state=state, interval_seconds=5.0)


def test_every_change_advances_the_owner_seq_and_orders_since() -> None:
    owned = OwnedRecords("mainpc", epoch=7)
    assert owned.put(facts("a"), 10.0) is True
    assert owned.put(facts("b"), 10.0) is True
    assert owned.put(facts("a", "down"), 11.0) is True
    assert owned.version == Version(7, 3)
    recs = owned.since(0, now=12.0)
    assert [(r.name, r.version) for r in recs] == [("b", Version(7, 2)), ("a", Version(7, 3))]
    assert [r.name for r in owned.since(2, now=12.0)] == ["a"]
    assert owned.since(3, now=12.0) == []


def test_a_refresh_is_versioned_but_not_material_and_a_repeat_is_nothing() -> None:
    owned = OwnedRecords("mainpc", epoch=1)
    owned.put(facts("a"), 10.0)
    assert owned.material_seq == 1
    assert owned.put(facts("a"), 15.0) is False  # seen again, same facts
    assert (owned.seq, owned.material_seq) == (2, 1)
    assert owned.put(facts("a"), 15.0) is False  # nothing new at all
    assert owned.seq == 2


def test_records_carry_age_at_send_time_not_a_timestamp() -> None:
    owned = OwnedRecords("mainpc", epoch=1)
    owned.put(facts("a"), 100.0)
    owned.put(facts("never"), None)
    by_name = {r.name: r for r in owned.since(0, now=103.5)}
    assert by_name["a"].age_seconds == 3.5
    assert by_name["never"].age_seconds is None


@pytest.mark.asyncio
async def test_digests_change_with_a_version_and_only_in_that_bucket() -> None:
    owned = OwnedRecords("mainpc", epoch=1)
    for i in range(50):
        owned.put(facts(f"agent{i}"), 1.0)
    before = await owned.digests_in_steps(16)
    owned.put(facts("agent3", "down"), 2.0)
    after = await owned.digests_in_steps(16)
    assert sum(a != b for a, b in zip(before, after, strict=True)) == 1
    assert bucket_digests(iter(()), 4) == ["", "", "", ""]


def test_epochs_grow_across_restarts_even_when_the_wall_clock_goes_back(tmp_path: Path) -> None:
    path = tmp_path / "sync-epoch"
    first = next_epoch(path, wall=1_800_000_000.0)
    second = next_epoch(path, wall=1_800_000_000.0 - 3600)  # clock set back an hour
    assert second == first + 1
    assert int(path.read_text()) == second


def test_epoch_without_a_file_follows_the_wall_clock_and_survives_an_unwritable_path(
        tmp_path: Path) -> None:
    assert next_epoch(None, wall=1000.0) == 1_000_000
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert next_epoch(blocker / "sub" / "epoch", wall=5.0) == 5000


@pytest.mark.asyncio
async def test_digests_in_steps_are_the_digests_and_let_the_loop_run() -> None:
    import asyncio

    owned = OwnedRecords("mainpc", epoch=3)
    for i in range(5000):
        owned.put(facts(f"agent{i:05d}", "up" if i % 7 else "down"), float(i))
    turns = 0
    done = False

    async def other() -> None:
        nonlocal turns
        while not done:
            turns += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(other())
    await asyncio.sleep(0)
    turns = 0
    stepped = await owned.digests_in_steps(64, step=1000)
    during = turns
    done = True
    await task
    # what a peer computes over the same versions (hub.sync.merge)
    assert stepped == bucket_digests(((r.name, r.version) for r in owned.since(0, now=0.0)), 64)
    assert during >= 5  # a turn after each step of 1,000 records
    owned.put(facts("agent00001", "down"), 9999.0)
    assert await owned.digests_in_steps(64) != stepped  # a change shows in its bucket's digest
