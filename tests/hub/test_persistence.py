"""State survives a restart (SQLite WAL); agents that were up get one interval of grace."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from hub.store import Store
from hub.testing import FakeClock, HubHarness


@pytest.mark.asyncio
async def test_state_survives_restart_with_grace(tmp_path: Path) -> None:
    clock = FakeClock()
    async with HubHarness.build(tmp_path, clock=clock) as h:
        await h.client.post("/v1/heartbeats", json=[
            {"agent": "MemoryClient", "interval_seconds": 10, "version": "3.1"},
            {"agent": "KnowledgeBase", "interval_seconds": 10, "status": "degraded",
             "reason": "slow disk"},
            {"agent": "Ghost", "interval_seconds": 10, "details": {"gpu": 0}}])
        await h.client.post("/v1/heartbeats", json={"agent": "SessionMemoryAgent",
                                                    "interval_seconds": 10})
        h.advance(40)  # all four are down now; three beat again, SessionMemoryAgent stays silent
        await h.client.post("/v1/heartbeats", json=[
            {"agent": "MemoryClient"}, {"agent": "KnowledgeBase", "status": "degraded"},
            {"agent": "Ghost"}])
        assert (await h.client.get("/v1/agents/SessionMemoryAgent")).json()["state"] == "down"
    # The hub was down 25 s (longer than 2x the interval of 10 s).
    clock.advance(25)
    async with HubHarness.build(tmp_path, clock=clock) as h:
        agents = {a["name"]: a for a in (await h.client.get("/v1/agents")).json()["agents"]}
        mc, kb, ghost = agents["MemoryClient"], agents["KnowledgeBase"], agents["Ghost"]
        assert (mc["state"], mc["version"], mc["age_seconds"]) == ("up", "3.1", 25.0)
        assert (kb["state"], kb["reason"]) == ("degraded", None)
        assert (ghost["state"], ghost["kind"], ghost["details"]) == ("up", "unknown", {"gpu": 0})
        assert agents["SessionMemoryAgent"]["state"] == "down"
        assert agents["Executor"]["state"] == "missing"
        # Grace: one interval (10 s) before judging ...
        h.advance(9)
        assert (await h.client.get("/v1/agents/MemoryClient")).json()["state"] == "up"
        # ... then judged from the real last beat, 25 + 10 s ago: down.
        h.advance(1)
        assert (await h.client.get("/v1/agents/MemoryClient")).json()["state"] == "down"
        # A beat after restart is taken as usual.
        await h.client.post("/v1/heartbeats", json={"agent": "MemoryClient"})
        assert (await h.client.get("/v1/agents/MemoryClient")).json()["state"] == "up"


@pytest.mark.asyncio
async def test_flush_writes_only_changed_records(tmp_path: Path) -> None:
    async with HubHarness.build(tmp_path) as h:
        await h.hub.flush()
        await h.client.post("/v1/heartbeats", json={"agent": "MemoryClient"})
        assert h.hub.registry.dirty == {"MemoryClient"}
        assert await h.hub.flush() == 1
        assert await h.hub.flush() == 0
        rows = {r["name"]: r for r in h.hub.store.load()}
        assert rows["MemoryClient"]["state"] == "up"


@pytest.mark.asyncio
async def test_failing_store_is_counted_and_retried_not_fatal(tmp_path: Path) -> None:
    async with HubHarness.build(tmp_path) as h:
        await h.client.post("/v1/heartbeats", json={"agent": "MemoryClient"})
        path = h.hub.store.path
        h.hub.store.close()
        path.unlink()
        path.mkdir()  # a directory where the database was: no database can be opened
        assert await h.hub.flush() == 0
        assert "MemoryClient" in h.hub.registry.dirty
        text = (await h.client.get("/metrics")).text
        assert 'fleet_hub_store_flushes_total{machine="mainpc",outcome="error"} 1.0' in text
        assert 'fleet_hub_store_flush_failures_total{machine="mainpc",reason="not_open"} 1.0' in text
        path.rmdir()
        assert await h.hub.flush() >= 1  # the next flush opens a new database by itself


def test_database_is_wal_and_per_machine(tmp_path: Path) -> None:
    s = Store(tmp_path / "deep" / "dir", "pc2")
    s.open()
    s.close()
    assert s.path.name == "hub-pc2.sqlite3"
    with sqlite3.connect(s.path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_store_on_unwritable_path_says_where(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a dir")
    s = Store(blocker / "sub", "mainpc")
    with pytest.raises(Exception, match=r"cannot open the hub state database .*file/sub"):
        s.open()


@pytest.mark.asyncio
async def test_records_being_written_still_count_as_pending(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    # A kill -9 before the commit loses them: the gauge says 0 only once they are on disk.
    async with HubHarness.build(tmp_path) as h:
        await h.hub.flush()
        committing, release = threading.Event(), threading.Event()
        real_write = h.hub.store.write

        def slow_write(rows: Any) -> Any:
            committing.set()
            release.wait(5)
            return real_write(rows)

        monkeypatch.setattr(h.hub.store, "write", slow_write)
        await h.client.post("/v1/heartbeats", json=[{"agent": "MemoryClient"}, {"agent": "Executor"}])
        flushing = asyncio.create_task(h.hub.flush())
        assert await asyncio.to_thread(committing.wait, 5)
        assert h.hub.registry.dirty == set()
        text = (await h.client.get("/metrics")).text
        assert 'fleet_hub_store_pending_writes{machine="mainpc"} 2.0' in text
        # One of them changes again meanwhile: pending for the next flush too, counted once.
        await h.client.post("/v1/heartbeats", json={"agent": "MemoryClient"})
        text = (await h.client.get("/metrics")).text
        assert 'fleet_hub_store_pending_writes{machine="mainpc"} 2.0' in text
        release.set()
        assert await flushing == 2
        text = (await h.client.get("/metrics")).text
        assert 'fleet_hub_store_pending_writes{machine="mainpc"} 1.0' in text
        monkeypatch.undo()
        assert await h.hub.flush() == 1
        text = (await h.client.get("/metrics")).text
        assert 'fleet_hub_store_pending_writes{machine="mainpc"} 0.0' in text
