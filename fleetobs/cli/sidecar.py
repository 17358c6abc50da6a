"""``fleetobs sidecar``: probe one container group's agents locally, push to the hub."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from fleetobs.cli.errors import EXIT_FAILED, exit_with, fail


def sidecar(
    group: str | None = typer.Option(
        None, "--group", "-g", help="Container group to watch [env CONTAINER_ROLE]."),
    topology: Path | None = typer.Option(
        None, "--topology", "-t", help="Topology YAML [env FLEET_TOPOLOGY]; default: the real fleet."),
    hub_url: str | None = typer.Option(
        None, "--hub-url", help="[env FLEET_HUB_URL]; default: derived from MACHINE_TYPE and discovery."),
    agent_host: str = typer.Option(
        "127.0.0.1", "--agent-host",
        help="Where the group's agents listen, seen from the sidecar (it shares their network)."),
    interval: float | None = typer.Option(
        None, "--interval", help="Seconds between cycles [env FLEET_PROBE_INTERVAL]; default: "
                                 "the agents' heartbeat interval, at most 15."),
    timeout: float | None = typer.Option(
        None, "--timeout", help="Seconds per probe [env FLEET_PROBE_TIMEOUT; default 2]."),
    once: bool = typer.Option(False, "--once", help="One cycle, print what happened, exit "
                                                    "(0 delivered, 1 not delivered)."),
) -> None:
    """Probe a group's agents over their real protocol; send the answers as heartbeats."""
    import asyncio
    import logging
    import signal

    from fleetobs.agent.hub_url import HubUrlError, derive_hub_url
    from fleetobs.probe.sidecar import Sidecar
    from fleetobs.probe.targets import auto_concurrency, default_interval, is_probed, probe_target
    from fleetobs.settings import load_settings
    from fleetobs.topology.load import load_topology

    settings = load_settings(os.environ, container_role=group, topology=topology,
                             probe_interval_seconds=interval, probe_timeout_seconds=timeout)
    name = settings.container_role
    if not name:
        fail("--group/CONTAINER_ROLE: which group's agents to probe?")
    topo = load_topology(settings.topology)
    g = topo.group_by_name.get(name) or next(
        (x for x in topo.groups if x.service_name == name), None)
    if g is None:
        fail(f"--group {name!r}: no such group (known: {', '.join(sorted(topo.group_by_name))})")
    agents = [a for a in topo.agents_in(g.name) if is_probed(a)]
    if not agents:
        fail(f"--group {g.name!r}: none of its agents is probed over zmq or http")
    try:
        url = hub_url or derive_hub_url({**os.environ, "MACHINE_TYPE": g.machine})
    except HubUrlError as exc:
        fail(str(exc))
    every = settings.probe_interval_seconds or default_interval(agents)
    timeout_s = min(settings.probe_timeout_seconds, every)
    concurrency = settings.probe_concurrency or auto_concurrency(len(agents), timeout_s, every)
    runner = Sidecar([probe_target(a, agent_host) for a in agents], url, every, timeout_s,
                     concurrency, settings.token, container=g.service_name)
    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    async def one() -> None:
        try:
            cycle = await runner.run_once()
        finally:
            await runner.aclose()
        if cycle.delivered:
            typer.echo(f"sidecar {g.name}: {cycle.answered}/{cycle.probed} agents answered; "
                       f"heartbeats delivered to {url}")
            return
        typer.echo(f"sidecar {g.name}: {cycle.answered}/{cycle.probed} agents answered; "
                   f"not delivered to {url}: {cycle.error}")
        exit_with(EXIT_FAILED)

    async def forever() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        logging.getLogger("fleetobs.sidecar").info(
            "sidecar %s: %d agents every %gs -> %s", g.name, len(agents), every, url)
        try:
            await runner.run(stop)
        finally:
            await runner.aclose()

    asyncio.run(one() if once else forever())
