"""``fleetobs probe``: ask one agent how it is, the way the hub does (a compose healthcheck).

Exit 0: it answered ok; 1: it answered degraded or error; 2: bad input; 3: no answer.
One line of output either way. Heavy imports stay out: pyzmq or httpx load only for
the protocol used, the topology only when TARGET is an agent name.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer

from fleetobs.cli.errors import EXIT_FAILED, EXIT_OK, EXIT_UNREACHABLE, exit_with, fail
from fleetobs.probe.result import ProbeResult, Protocol

PROTOCOLS = ", ".join(p.value for p in Protocol)


def parse_host_port(target: str) -> tuple[str, int] | None:
    """``HOST:PORT`` / ``[v6]:PORT`` -> (host, port); ``None`` when TARGET is a name."""
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit():
        return None
    host = host.removeprefix("[").removesuffix("]")
    if not host:
        fail(f"{target}: missing host before ':{port}'")
    number = int(port)
    if not 1 <= number <= 65535:
        fail(f"{target}: port {number} is outside 1..65535")
    return host, number


def resolve_agent(name: str, topology: Path | None, protocol: Protocol | None) -> tuple[str, int, Protocol]:
    """Agent name -> (host, port, protocol) through the topology and discovery settings."""
    from fleetobs.settings import load_settings
    from fleetobs.topology.load import load_topology
    from fleetobs.topology.model import ProbeKind
    from hub.discovery import address_of

    settings = load_settings()
    topo = load_topology(topology or settings.topology)
    agent = topo.find_agent(name, prefer_machine=settings.machine)
    if agent is None:
        matches = [a.machine for a in topo.agents if a.name == name]
        if matches:
            fail(f"{name}: on machines {', '.join(matches)}; set MACHINE_TYPE to choose")
        fail(f"{name}: no such agent in the topology (and not HOST:PORT)")
    host = address_of(agent, topo, settings.machine, settings.discovery_mode)
    if agent.probe is ProbeKind.PUSH and protocol is None:
        # Push agents have no health socket. The one push agent that serves HTTP is the
        # fleetobs hub itself (the real ObservabilityHub's name and port): ask its /health.
        if agent.port == topo.machine(agent.machine).hub_port:
            return host, agent.port, Protocol.HTTP
        fail(f"{name}: watched by heartbeats (probe: push), it has no health socket; "
             f"ask its hub: GET /v1/agents/{name}")
    if protocol is None:
        protocol = Protocol.HTTP if agent.probe is ProbeKind.HTTP else Protocol.ZMQ
    port = agent.http_port if protocol is Protocol.HTTP else agent.health_check_port
    return host, port, protocol


async def run_probe(host: str, port: int, protocol: Protocol, timeout: float) -> ProbeResult:
    if protocol is Protocol.HTTP:
        from fleetobs.probe.http_probe import HttpProber

        http = HttpProber(max_connections=1)
        try:
            return await http.probe(host, port, timeout)
        finally:
            await http.aclose()
    from fleetobs.probe.zmq_probe import ZmqProber

    zmq = ZmqProber()
    try:
        return await zmq.probe(host, port, timeout)
    finally:
        zmq.close()


def probe(
    target: str = typer.Argument(..., help="Agent name (resolved through the topology) or HOST:PORT."),
    protocol: str | None = typer.Option(
        None, "--protocol", "-p",
        help=f"{PROTOCOLS}; default: the agent's topology probe, zmq for HOST:PORT."),
    timeout: float = typer.Option(2.0, "--timeout", help="Seconds to wait for the answer."),
    topology: Path | None = typer.Option(
        None, "--topology", "-t", help="Topology YAML [env FLEET_TOPOLOGY]; default: the real fleet."),
) -> None:
    """Probe one agent: exit 0 ok, 1 degraded/error, 2 bad input, 3 no answer."""
    chosen: Protocol | None = None
    if protocol is not None:
        try:
            chosen = Protocol(protocol.strip().lower())
        except ValueError:
            fail(f"--protocol {protocol!r}: expected one of {PROTOCOLS}")
    if not 0 < timeout <= 600:
        fail(f"--timeout {timeout:g}: expected seconds in (0, 600]")
    address = parse_host_port(target)
    if address is not None:
        host, port = address
        chosen = chosen or Protocol.ZMQ
        label = ""
    else:
        host, port, chosen = resolve_agent(target, topology, chosen)
        label = f"{target}: "
    result = asyncio.run(run_probe(host, port, chosen, timeout))
    typer.echo(label + result.summary())
    if not result.answered:
        exit_with(EXIT_UNREACHABLE)
    exit_with(EXIT_OK if result.status == "ok" else EXIT_FAILED)
