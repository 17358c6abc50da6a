"""``fleetobs simulate``: run a machine's agents as real protocol peers (a TOOL, not the hub).

By default every probed agent of the machine listens on its real ports (plus
``--port-offset``); ``--ephemeral`` takes any free ports instead and
``--write-topology`` saves the topology with those ports, for a hub to load.
"""

from __future__ import annotations

import os
from pathlib import Path

import typer

from fleetobs.cli.errors import fail


def _overrides(items: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        name, sep, behaviour = item.partition("=")
        if not sep or not name or not behaviour:
            fail(f"--set {item!r}: expected AGENT=BEHAVIOUR")
        out[name.strip()] = behaviour.strip().lower()
    return out


def simulate(
    topology: Path | None = typer.Option(
        None, "--topology", "-t", help="Topology YAML [env FLEET_TOPOLOGY]; default: the real fleet."),
    machine: list[str] = typer.Option(
        [], "--machine", "-m", help="Machine(s) whose agents to run [env MACHINE_TYPE]; repeatable."),
    agents: int | None = typer.Option(None, "--agents", "-n", min=1, help="Run only the first N agents."),
    synthetic: int = typer.Option(
        0, "--synthetic", min=0, max=20000,
        help="Instead of the topology's agents, N made-up ones (sim-0000...) on free ports."),
    fail_rate: float = typer.Option(0.0, "--fail-rate", help="Fraction (0..1) of agents not ok."),
    kinds: str = typer.Option("degraded,error,silent,garbage,slow", "--kinds",
                              help="Failure kinds handed out in turn to the failing agents."),
    set_: list[str] = typer.Option([], "--set", help="AGENT=BEHAVIOUR (ok, degraded, error, slow, "
                                                     "silent, garbage, down); repeatable."),
    seed: int = typer.Option(0, "--seed", help="Which agents fail (same seed, same choice)."),
    slow_seconds: float = typer.Option(0.5, "--slow-seconds", help="Delay of 'slow' agents."),
    port_offset: int = typer.Option(0, "--port-offset", min=-60000, max=60000,
                                    help="Added to every topology port."),
    ephemeral: bool = typer.Option(False, "--ephemeral", help="Any free ports instead."),
    write_topology: Path | None = typer.Option(
        None, "--write-topology", help="Write the topology with the ports actually bound."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind."),
    push: bool = typer.Option(False, "--push", help="Send heartbeats to the hub instead of "
                                                    "opening health sockets."),
    hub_url: str | None = typer.Option(None, "--hub-url", help="[env FLEET_HUB_URL] for --push."),
    interval: float = typer.Option(5.0, "--interval", help="Heartbeat interval for --push."),
) -> None:
    """Run simulated agents (ZeroMQ REP + HTTP /health like the real BaseAgent) until Ctrl-C."""
    import asyncio
    import signal

    import yaml

    from fleetobs.agent.hub_url import HubUrlError, derive_hub_url
    from fleetobs.settings import load_settings
    from fleetobs.simulator.behaviour import Behaviour, plan_behaviours
    from fleetobs.simulator.fleet import PortPlan, SimulatedFleet, specs_from_topology, synthetic_specs
    from fleetobs.topology.load import load_topology

    def behaviour(word: str, where: str) -> Behaviour:
        try:
            return Behaviour(word)
        except ValueError:
            fail(f"{where} {word!r}: expected one of {', '.join(b.value for b in Behaviour)}")

    if not 0 <= fail_rate <= 1:
        fail(f"--fail-rate {fail_rate:g}: expected a fraction in 0..1")
    failure_kinds = [behaviour(k.strip(), "--kinds") for k in kinds.split(",") if k.strip()]
    if not failure_kinds:
        fail("--kinds: name at least one failure kind")
    settings = load_settings(os.environ, topology=topology)
    topo = load_topology(settings.topology)
    machines = machine or [settings.machine]
    for m in machines:
        if m not in topo.machine_by_name:
            fail(f"--machine {m!r}: not in the topology (known: {', '.join(topo.machine_by_name)})")
    ports = PortPlan(offset=port_offset, ephemeral=ephemeral or synthetic > 0)
    if synthetic:
        names = [f"sim-{i:04d}" for i in range(synthetic)]
    else:
        names = [s.name for s in specs_from_topology(topo, machines, {}, ports, agents)]
    overrides = {n: behaviour(b, f"--set {n}=") for n, b in _overrides(set_).items()}
    unknown = sorted(set(overrides) - set(names))
    if unknown:
        fail(f"--set: {', '.join(unknown)} is not among the simulated agents")
    plan = plan_behaviours(names, fail_rate, seed, failure_kinds, overrides)
    specs = (synthetic_specs(synthetic, plan, slow_seconds=slow_seconds) if synthetic
             else specs_from_topology(topo, machines, plan, ports, agents, slow_seconds))
    url = None
    if push:
        try:
            url = hub_url or derive_hub_url(os.environ)
        except HubUrlError as exc:
            fail(str(exc))

    async def run() -> None:
        fleet = SimulatedFleet(specs, host=host)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            counts: dict[str, int] = {}
            for s in specs:
                counts[s.behaviour.value] = counts.get(s.behaviour.value, 0) + 1
            mix = ", ".join(f"{n} {b}" for b, n in sorted(counts.items()))
            if url is not None:
                n = fleet.start_push(url, interval, settings.token)
                typer.echo(f"simulating {len(specs)} agents ({mix}); {n} push heartbeats to {url}")
            else:
                report = await fleet.start()
                if report.failed:
                    first = next(iter(report.failed.values()))
                    typer.echo(f"warning: {len(report.failed)} agents could not bind (first: {first})",
                               err=True)
                if report.http_skipped:
                    typer.echo(f"warning: no HTTP /health for {len(report.http_skipped)} agents: "
                               "health_check_port + 1 is taken (the real fleet's collisions)", err=True)
                if write_topology is not None and not synthetic:
                    write_topology.write_text(
                        yaml.safe_dump(fleet.topology(topo).model_dump(mode="json"), sort_keys=False),
                        encoding="utf-8")
                elif write_topology is not None:
                    write_topology.write_text(yaml.safe_dump(_synthetic_topology(fleet)), encoding="utf-8")
                typer.echo(f"simulating {len(report.started)} agents on {host} ({mix}); Ctrl-C stops")
            await stop.wait()
        finally:
            await fleet.stop()

    asyncio.run(run())


def _synthetic_topology(fleet: object) -> dict[str, object]:
    from fleetobs.simulator.fleet import SimulatedFleet

    assert isinstance(fleet, SimulatedFleet)
    return {
        "version": 1,
        "machines": [{"name": "sim", "hub_port": 9000, "address": fleet.host}],
        "agents": [{"name": a.spec.name, "machine": "sim", "port": a.port,
                    "health_check_port": a.health_check_port}
                   for a in fleet.agents.values() if a.health_check_port],
    }
