"""``fleetobs simulate-group``: play one container group inside one container (a TOOL).

The compose bundle's test variant runs it in every group container with the group's
manifest (``/fleetobs/group.json``); see fleetobs/simulator/group.py for the BaseAgent
quirks it reproduces. SIGINT cleans up (ready keys deleted) and exits 0; SIGTERM is
deliberately not handled, as in BaseAgent.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import typer

from fleetobs.cli.errors import fail


def _address(text: str, option: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        fail(f"{option} {text!r}: expected HOST:PORT")
    return host, int(port)


def simulate_group(
    manifest: Path | None = typer.Option(
        None, "--manifest", help="Group manifest (compose/<machine>/group/<group>.json); default: "
                                 "the group --group/CONTAINER_ROLE of the topology."),
    group: str | None = typer.Option(None, "--group", "-g", help="Group name [env CONTAINER_ROLE]."),
    topology: Path | None = typer.Option(
        None, "--topology", "-t", help="Topology YAML [env FLEET_TOPOLOGY]; default: the real fleet."),
    constructor_seconds: float = typer.Option(
        20.0, "--constructor-seconds", min=0, max=3600,
        help="How long each agent's constructor takes before its main port serves (BaseAgent: ~20)."),
    health_delay: float = typer.Option(1.0, "--health-delay", min=0, max=600,
                                       help="Seconds from start until the health port answers."),
    ready_ttl: int = typer.Option(300, "--ready-ttl", min=1, max=86400,
                                  help="Expiry of the agent:ready:NAME key, set once (BaseAgent: 300)."),
    redis: str = typer.Option("127.0.0.1:6379", "--redis", help="Redis (BaseAgent: always localhost:6379)."),
    nats: str = typer.Option("127.0.0.1:4222", "--nats", help="NATS (BaseAgent: always localhost:4222)."),
    host: str | None = typer.Option(None, "--host", help="Address to bind [env BIND_ADDRESS]."),
    order: str = typer.Option("manifest", "--order",
                              help="manifest (owners of shared ports first) or reverse (a wrong launcher)."),
) -> None:
    """Run one group's agents like the real BaseAgent in a container, until SIGINT."""
    import asyncio
    import signal

    from fleetobs.settings import load_settings
    from fleetobs.simulator.group import GroupConfig, GroupSimulator, members_from_manifest

    if order not in ("manifest", "reverse"):
        fail(f"--order {order!r}: expected manifest or reverse")
    settings = load_settings(os.environ, bind_address=host, topology=topology, container_role=group)
    if manifest is not None:
        try:
            doc = json.loads(manifest.read_text(encoding="utf-8"))
            members = members_from_manifest(doc)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            fail(f"--manifest {manifest}: {exc}")
        name = str(doc.get("group"))
    else:
        from fleetobs.generate.compose.group_services import manifest as render_manifest
        from fleetobs.topology.grouping import group_plan
        from fleetobs.topology.load import load_topology

        name = settings.container_role or ""
        topo = load_topology(settings.topology)
        if name not in topo.group_by_name:
            fail(f"--group/CONTAINER_ROLE {name!r}: not a group of the topology")
        members = members_from_manifest(json.loads(render_manifest(group_plan(topo, name))))
    config = GroupConfig(constructor_seconds=constructor_seconds, health_delay_seconds=health_delay,
                         host=settings.bind_address, redis=_address(redis, "--redis"),
                         nats=_address(nats, "--nats"), ready_ttl_seconds=ready_ttl,
                         order="reverse" if order == "reverse" else "manifest")

    async def run() -> None:
        sim = GroupSimulator(members, config)
        stop = asyncio.Event()
        # SIGINT only: BaseAgent installs no SIGTERM handler, so SIGTERM kills the process.
        asyncio.get_running_loop().add_signal_handler(signal.SIGINT, stop.set)
        sim.start()
        typer.echo(f"simulating group {name}: {len(members)} agents on {config.host}, constructors "
                   f"{constructor_seconds:g} s; SIGINT stops", err=True)
        try:
            await stop.wait()
            cleared = await sim.interrupt()
            typer.echo(f"SIGINT: ready keys deleted for {len(cleared)} agents", err=True)
        finally:
            await sim.stop()

    asyncio.run(run())
