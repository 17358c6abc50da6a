"""The hub's one extension point: features beyond the core plug in here.

Probing, the GPU view, log intake and sync are plugins: each gets the
:class:`HubContext`, may add an API router and Prometheus collectors, and runs
its background work between ``start`` and ``stop``. This module is only the
contract: it imports no plugin (they import it). The app, the composition root,
holds the list (:func:`hub.app.plugin_factories`) and calls every factory; a
factory returns ``None`` when its feature is disabled by configuration.

To add a plugin: write ``hub/<feature>.py`` with a factory and add ONE line to
:func:`hub.app.plugin_factories`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from fastapi import APIRouter
from prometheus_client.registry import Collector

from fleetobs.settings import FleetSettings
from fleetobs.topology.model import Agent, Topology
from fleetobs.tracing import Tracing
from hub.observation import Observation


class HubContext(Protocol):
    """What the hub core offers plugins."""

    @property
    def topology(self) -> Topology: ...

    @property
    def machine(self) -> str:
        """The machine this hub runs on (a topology machine name)."""

    @property
    def settings(self) -> FleetSettings: ...

    def now(self) -> float:
        """Monotonic seconds (the hub's injected clock)."""

    def record(self, obs: Observation) -> None:
        """Feed one observation into the liveness model (call on the event loop)."""

    def address_of(self, agent: Agent) -> str:
        """Host to reach ``agent`` at, per SERVICE_DISCOVERY_MODE (no port, no scheme)."""

    @property
    def tracing(self) -> Tracing:
        """Spans for background work (probe cycles, sync rounds, log pushes); no-op when off."""


class HubPlugin(Protocol):
    name: str

    def router(self) -> APIRouter | None: ...

    def collectors(self) -> Sequence[Collector]: ...

    async def start(self) -> None: ...

    async def stop(self, deadline_seconds: float) -> None:
        """Stop background work within ``deadline_seconds``; idempotent."""


PluginFactory = Callable[[HubContext], HubPlugin | None]
