"""``create_app``: the hub's FastAPI application, with every side effect an argument.

The clock, topology, settings, data dir and plugin factories are passed in, so tests
build a hub on a fake clock in a temp dir and the CLI builds the production one.
This module is the composition root: it holds the plugin list
(:func:`plugin_factories`; the contract is hub/plugins.py, which imports no plugin)
and creates them: each one's router is mounted behind the same auth as the core API,
its collectors go on the hub's own CollectorRegistry (never the global one), and it is
started and stopped (with a deadline) by the lifespan.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import Depends, FastAPI

from fleetobs import __version__
from fleetobs.settings import FleetSettings
from fleetobs.topology.model import Topology
from fleetobs.tracing import Tracing
from hub.api import agents, discover, health, heartbeats, status
from hub.api.auth import authorize
from hub.api.docs import docs_router
from hub.api.media import require_json
from hub.api.middleware import BodyLimit, RequestEdges, Timing
from hub.api.responses import SafeJSONResponse
from hub.clock import Clock
from hub.gpu import gpu_plugin
from hub.logs import logs_plugin
from hub.plugins import HubPlugin, PluginFactory
from hub.probing import probing_plugin
from hub.service import Hub, HubConfig
from hub.sync.plugin import sync_plugin


def plugin_factories() -> list[PluginFactory]:
    """Every plugin the production hub runs, in start order (stopped in reverse)."""
    # --- plugins (one line each) ---
    return [probing_plugin, logs_plugin, gpu_plugin, sync_plugin]


def create_app(topology: Topology, settings: FleetSettings, *, machine: str | None = None,
               data_dir: Path | None = None, clock: Clock | None = None,
               config: HubConfig | None = None,
               factories: Sequence[PluginFactory] | None = None,
               tracing: Tracing | None = None) -> FastAPI:
    """The hub app for ``machine`` (default: ``settings.machine``)."""
    hub = Hub(topology, machine or settings.machine, settings,
              data_dir if data_dir is not None else settings.data_dir,
              clock=clock, config=config, tracing=tracing)
    plugins: list[HubPlugin] = []
    for factory in (plugin_factories() if factories is None else factories):
        plugin = factory(hub)
        if plugin is not None:
            plugins.append(plugin)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            await hub.start(plugins)
            yield
        finally:
            await hub.stop()

    app = FastAPI(
        title="fleetobs ObservabilityHub",
        version=__version__,
        description="Heartbeats, liveness, discovery and metrics for one machine's agents. "
                    "The status page is at /.",
        lifespan=lifespan,
        # Served by hub.api.docs (local assets, no CDN) behind the read guard instead of
        # FastAPI's open routes.
        openapi_url=None, docs_url=None, redoc_url=None,
        default_response_class=SafeJSONResponse,
    )
    app.state.hub = hub
    app.state.plugins = plugins
    guarded = [Depends(authorize), Depends(require_json)]
    app.include_router(health.router)
    app.include_router(docs_router(app.title), dependencies=[Depends(authorize)])
    app.include_router(status.router, dependencies=guarded)
    app.include_router(heartbeats.router, dependencies=guarded)
    app.include_router(agents.router, dependencies=guarded)
    app.include_router(discover.router, dependencies=guarded)
    for plugin in plugins:
        router = plugin.router()
        if router is not None:
            app.include_router(router, dependencies=guarded)
        for collector in plugin.collectors():
            hub.metrics_registry.register(collector)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes, counters=hub.counters,
                       body_timeout=settings.http_body_timeout_seconds)
    app.add_middleware(RequestEdges)
    app.add_middleware(Timing, counters=hub.counters)
    return app


def hub_of(app: FastAPI) -> Hub:
    """The Hub behind an app built by :func:`create_app`."""
    hub: Hub = app.state.hub
    return hub


__all__ = ["FleetSettings", "Hub", "HubConfig", "create_app", "hub_of", "plugin_factories"]
