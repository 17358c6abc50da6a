"""Where this machine's hub listens, from the environment.

``FLEET_HUB_URL`` wins. Otherwise the URL is derived like the hub derives agent
addresses (SERVICE_DISCOVERY_MODE): ``host`` -> 127.0.0.1, ``static`` -> the machine's
address in the topology, ``container_dns`` -> the compose service of the hub's group;
the port is ``FLEET_HUB_PORT`` or the machine's ``hub_port`` in the topology.
"""

from __future__ import annotations

from collections.abc import Mapping

#: The hub's own entry in the topology (one per machine).
HUB_AGENT = "ObservabilityHub"
#: Compose service used when the topology does not place the hub in a group.
DEFAULT_HUB_SERVICE = "observability-hub"
MODES = ("host", "static", "container_dns")


class HubUrlError(ValueError):
    """The environment does not say where the hub is."""


def derive_hub_url(environ: Mapping[str, str]) -> str:
    url = environ.get("FLEET_HUB_URL", "").strip()
    if url:
        if not url.startswith(("http://", "https://")):
            raise HubUrlError(f"FLEET_HUB_URL={url!r}: expected http://HOST:PORT or https://...")
        return url.rstrip("/")
    machine = environ.get("MACHINE_TYPE", "").strip() or "mainpc"
    mode = (environ.get("SERVICE_DISCOVERY_MODE", "").strip().lower() or "host")
    if mode not in MODES:
        raise HubUrlError(f"SERVICE_DISCOVERY_MODE={mode!r}: expected one of {', '.join(MODES)}")
    port_text = environ.get("FLEET_HUB_PORT", "").strip()
    port = _port(port_text) if port_text else None
    if mode == "host" and port is not None:
        return f"http://127.0.0.1:{port}"  # nothing to look up: skip loading the topology
    host, topo_port = _from_topology(environ, machine, mode)
    return f"http://{host}:{port or topo_port}"


def _port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise HubUrlError(f"FLEET_HUB_PORT={text!r}: expected a port number 1..65535")
    return int(text)


def _from_topology(environ: Mapping[str, str], machine: str, mode: str) -> tuple[str, int]:
    # Imported here: pydantic and PyYAML load only when the URL must be derived.
    from fleetobs.topology.load import TopologyError, load_topology

    try:
        topology = load_topology(environ.get("FLEET_TOPOLOGY") or None)
        m = topology.machine(machine)
    except (TopologyError, KeyError) as exc:
        raise HubUrlError(f"cannot derive the hub URL (set FLEET_HUB_URL): {exc}") from None
    if mode == "host":
        return "127.0.0.1", m.hub_port
    if mode == "static":
        return m.address, m.hub_port
    hub = topology.agent_by_key.get((machine, HUB_AGENT))
    if hub is None or hub.group is None:
        return DEFAULT_HUB_SERVICE, m.hub_port
    return topology.group_by_name[hub.group].service_name, m.hub_port
