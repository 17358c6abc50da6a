"""Fakes shipped with the hub for tests and benchmarks (no mocks of hub code)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from fastapi import FastAPI

from fleetobs.settings import FleetSettings, load_settings
from fleetobs.topology.load import load_topology
from fleetobs.topology.model import Topology
from fleetobs.tracing import Tracing
from hub.app import create_app, hub_of
from hub.plugins import PluginFactory
from hub.service import Hub, HubConfig


class FakeClock:
    """A clock that moves only when told; ``wall`` and ``monotonic`` move together
    unless :meth:`jump_wall` makes the wall clock jump alone (as NTP or a user can)."""

    def __init__(self, monotonic: float = 1000.0, wall: float = 1_800_000_000.0) -> None:
        self._mono = monotonic
        self._wall = wall

    def monotonic(self) -> float:
        return self._mono

    def wall(self) -> float:
        return self._wall

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a monotonic clock cannot go back")
        self._mono += seconds
        self._wall += seconds

    def jump_wall(self, seconds: float) -> None:
        self._wall += seconds


@dataclass
class HubHarness:
    """A hub app on a fake clock, in-process, background loops off: tests tick it.

    ``async with HubHarness.build(tmp_path) as h: await h.client.post(...)``
    """

    app: FastAPI
    clock: FakeClock
    client: httpx.AsyncClient

    @property
    def hub(self) -> Hub:
        return hub_of(self.app)

    def advance(self, seconds: float, step: float = 1.0) -> None:
        """Move time on in judge-sized steps, judging after each (no stall seen)."""
        left = seconds
        while left > 1e-9:
            d = min(step, left)
            self.clock.advance(d)
            self.hub.tick()
            left -= d

    @staticmethod
    @asynccontextmanager
    async def build(data_dir: Path, *, topology: Topology | None = None,
                    settings: FleetSettings | None = None, clock: FakeClock | None = None,
                    config: HubConfig | None = None,
                    factories: Sequence[PluginFactory] = (),
                    headers: dict[str, str] | None = None, machine: str | None = None,
                    tracing: Tracing | None = None) -> AsyncIterator[HubHarness]:
        clock = clock or FakeClock()
        app = create_app(topology or load_topology(None), settings or load_settings({}),
                         machine=machine, data_dir=data_dir, clock=clock,
                         config=config or HubConfig(background=False), factories=factories,
                         tracing=tracing)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://hub.test",
                                         headers=headers) as client:
                yield HubHarness(app=app, clock=clock, client=client)
