"""Which machine each peer hub is, known from configuration before it ever answers.

A hub must name its peers by machine from its first second: ``fleet_peer_up{peer}``
is keyed on the machine name, and an alert on ``fleet_peer_up{peer="pc2"} == 0`` must
be able to fire for a peer that was never reachable at all. So every peer URL is mapped
to a topology machine here, at start, never from the peer's answer.

Configured entries (``--peer`` / ``FLEET_PEERS`` / the plan's endpoint variables) are
``NAME=URL`` or a bare ``URL``. A bare URL is the machine whose topology ``address`` and
``hub_port`` it names; else the one machine whose ``address`` it names; else the one
whose ``hub_port`` it uses; else, when the topology has only one other machine, that
one. Anything else is a configuration error that says to write ``NAME=URL``. Nothing
configured: every other machine of the topology at ``http://<address>:<hub_port>``.
``none`` (or ``off``): no peers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from loguru import logger

from fleetobs.errors import InputError
from fleetobs.topology.model import NAME_RE, Machine, Topology

#: What turns sync's outbound links off (the hub still answers peers that push to it).
NO_PEERS = frozenset({"none", "off"})


class PeerConfigError(InputError):
    """A configured peer cannot be mapped to a topology machine."""


@dataclass(frozen=True, slots=True)
class Peer:
    machine: str
    url: str


def default_url(machine: Machine) -> str:
    return f"http://{machine.address}:{machine.hub_port}"


def _split(entry: str) -> tuple[str | None, str]:
    name, sep, rest = entry.partition("=")
    if sep and NAME_RE.match(name.strip()) and "://" not in name:
        return name.strip(), rest.strip()
    return None, entry.strip()


def _host_port(url: str) -> tuple[str | None, int | None]:
    try:
        parts = urlsplit(url)
        return parts.hostname, parts.port
    except ValueError:  # a port that is not a number
        return None, None


def _which(url: str, others: Sequence[Machine]) -> Machine | None:
    host, port = _host_port(url)
    rules: tuple[Callable[[Machine], bool], ...] = (
        lambda m: m.address == host and m.hub_port == port,
        lambda m: m.address == host,
        lambda m: port is not None and m.hub_port == port,
    )
    for rule in rules:
        found = [m for m in others if rule(m)]
        if len(found) == 1:
            return found[0]
    return others[0] if len(others) == 1 else None


def resolve_peers(topology: Topology, machine: str, configured: Sequence[str]) -> list[Peer]:
    """The peers of ``machine``'s hub, each with its machine (see the module docstring)."""
    others = [m for m in topology.machines if m.name != machine]
    entries = [e.strip() for e in configured if e.strip()]
    if not entries:
        return [Peer(m.name, default_url(m)) for m in others]
    if any(e.lower() in NO_PEERS for e in entries):
        return []
    by_name = {m.name: m for m in others}
    me = topology.machine(machine)
    peers: list[Peer] = []
    for entry in entries:
        name, url = _split(entry)
        if name is not None:
            if name == machine:
                raise PeerConfigError(f"peer {entry!r}: {name} is this hub's own machine")
            if name not in by_name:
                known = ", ".join(sorted(by_name)) or "none"
                raise PeerConfigError(f"peer {entry!r}: no machine {name!r} in the topology "
                                      f"(other machines: {known})")
            target = by_name[name]
        else:
            if _host_port(url) == (me.address, me.hub_port):
                raise PeerConfigError(f"peer {url!r} is this hub's own address ({machine})")
            found = _which(url, others)
            if found is None:
                where = ", ".join(f"{m.name} at {m.address}:{m.hub_port}" for m in others) or "none"
                raise PeerConfigError(
                    f"peer {url!r}: which machine's hub is it? The topology's other machines are "
                    f"{where}; write NAME=URL (e.g. pc2={url})")
            target = found
        if any(p.machine == target.name for p in peers):
            logger.warning("peer {!r}: {} already has a peer URL; keeping the first", entry,
                           target.name)
            continue
        peers.append(Peer(target.name, url))
    return peers
