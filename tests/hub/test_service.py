"""The Hub's background loops on the real clock: the pause guard where it matters."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from hub.clock import SystemClock
from hub.liveness import LivenessPolicy
from hub.service import HubConfig
from hub.testing import FakeClock, HubHarness

FAST = HubConfig(policy=LivenessPolicy(min_interval_seconds=0.1), tick_seconds=0.05,
                 stall_threshold_seconds=0.2, flush_seconds=0.05, background=True)


async def state(h: HubHarness, name: str) -> str:
    s: str = (await h.client.get(f"/v1/agents/{name}")).json()["state"]
    return s


@pytest.mark.asyncio
async def test_blocked_event_loop_does_not_convict(tmp_path: Path) -> None:
    """The loop is frozen 2 s (over 2x the down threshold of 0.9 s): nobody could have
    been heard, so nobody is convicted; real silence afterwards still is."""
    async with HubHarness.build(tmp_path, config=FAST, clock=SystemClock()) as h:  # type: ignore[arg-type]
        await h.client.post("/v1/heartbeats", json={"agent": "MemoryClient",
                                                    "interval_seconds": 0.3})
        await asyncio.sleep(0.1)  # a couple of judge passes on time
        time.sleep(2.0)  # freeze the event loop (as a GC pause, SIGSTOP or suspend would)
        await asyncio.sleep(0.1)  # the judge runs again, late
        assert await state(h, "MemoryClient") == "up"
        assert h.hub.guard.stalls >= 1
        await asyncio.sleep(1.5)  # now real silence, on a running loop
        assert await state(h, "MemoryClient") == "down"


@pytest.mark.asyncio
async def test_background_flush_persists_without_shutdown(tmp_path: Path) -> None:
    async with HubHarness.build(tmp_path, config=FAST, clock=FakeClock()) as h:
        await h.client.post("/v1/heartbeats", json={"agent": "MemoryClient"})
        for _ in range(100):
            if not h.hub.registry.dirty:
                break
            await asyncio.sleep(0.02)
        rows = {r["name"]: r for r in h.hub.store.load()}
        assert rows["MemoryClient"]["state"] == "up"
