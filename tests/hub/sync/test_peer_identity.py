"""Each peer is known by its machine from configuration, from the first second.

Before: a hub that never completed a sync exported ``fleet_peer_up{peer="127.0.0.2:43923"}``
and ``/v1/fleet`` said ``"machine": null``, so an alert on ``peer="pc2"`` could never fire
(and tests/hub/sync/test_processes.py flaked when the first exchange came late).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from fleetobs.settings import load_settings
from fleetobs.testing.cli import run_cli
from fleetobs.topology.load import load_topology
from fleetobs.topology.model import Topology
from hub.sync.engine import SyncEngine
from hub.sync.peer import SyncConfig
from hub.sync.peers import Peer, PeerConfigError, resolve_peers
from hub.sync.plugin import sync_plugin
from hub.sync.testing import MemoryNetwork
from hub.testing import FakeClock, HubHarness


def three() -> Topology:
    return Topology.model_validate({"machines": [
        {"name": "mainpc", "hub_port": 9000, "address": "mainpc"},
        {"name": "pc2", "hub_port": 9100, "address": "pc2"},
        {"name": "pc3", "hub_port": 9200, "address": "10.0.0.3"}]})


@pytest.mark.asyncio
async def test_a_peer_never_reached_is_named_by_its_machine_from_the_start(tmp_path: Path) -> None:
    settings = load_settings({"FLEET_PEERS": "http://127.0.0.2:43923", "FLEET_PROBE_ENABLED": "false"})
    net = MemoryNetwork()  # nobody listens at that URL: every attempt fails to connect
    factory = lambda ctx: sync_plugin(ctx, transport=net.transport("mainpc"))  # noqa: E731
    async with HubHarness.build(tmp_path, settings=settings, factories=[factory]) as h:
        text = (await h.client.get("/metrics")).text
        assert 'fleet_peer_up{machine="mainpc",peer="pc2"} 0.0' in text
        assert "43923" not in text
        (peer,) = (await h.client.get("/v1/fleet")).json()["peers"]
        assert (peer["machine"], peer["peer"], peer["answered"], peer["up"]) == ("pc2", "pc2", False, False)
        plugin = next(p for p in h.app.state.plugins if p.name == "sync")
        await plugin.engine.links[0].step()  # a failed first exchange changes no name
        text = (await h.client.get("/metrics")).text
        assert 'fleet_sync_failures_total{machine="mainpc",peer="pc2",reason="connect"} 1.0' in text


def test_default_peers_are_every_other_machine_at_its_address_and_hub_port() -> None:
    topo = load_topology(None)
    assert resolve_peers(topo, "mainpc", ()) == [Peer("pc2", "http://pc2:9100")]
    assert resolve_peers(topo, "pc2", ()) == [Peer("mainpc", "http://mainpc:9000")]
    assert resolve_peers(three(), "pc3", ()) == [Peer("mainpc", "http://mainpc:9000"),
                                                 Peer("pc2", "http://pc2:9100")]
    assert resolve_peers(topo, "mainpc", ("none",)) == []


@pytest.mark.parametrize(("entry", "machine"), [
    ("pc3=http://127.0.0.1:5000", "pc3"),  # explicit
    ("http://10.0.0.3:9200", "pc3"),  # the topology's address and hub port
    ("http://pc2-observability:9100", "pc2"),  # the plan's endpoint: the hub port says which
    ("http://10.0.0.3:1234", "pc3"),  # the address says which
])
def test_a_peer_url_is_mapped_to_its_machine(entry: str, machine: str) -> None:
    (peer,) = resolve_peers(three(), "mainpc", (entry,))
    assert peer.machine == machine and "=" not in peer.url


@pytest.mark.parametrize(("entry", "message"), [
    ("http://127.0.0.2:43923", "which machine's hub is it?"),  # two other machines: ambiguous
    ("pc9=http://x:1", "no machine 'pc9'"),
    ("mainpc=http://x:1", "this hub's own machine"),
    ("http://mainpc:9000", "this hub's own address"),
])
def test_a_peer_that_cannot_be_named_is_a_configuration_error(entry: str, message: str) -> None:
    with pytest.raises(PeerConfigError, match=message):
        resolve_peers(three(), "mainpc", (entry,))


@pytest.mark.asyncio
async def test_a_url_answering_as_another_machine_is_not_that_peer() -> None:
    clock = FakeClock()
    net = MemoryNetwork()
    engines = {m: SyncEngine(m, 1, clock=clock.monotonic, transport=net.transport(m), config=SyncConfig(),
                             known_machines=["mainpc", "pc2", "pc3"]) for m in ("pc2", "pc3")}
    for m, eng in engines.items():
        net.attach(f"mem://{m}", eng.server)
    main = SyncEngine("mainpc", 1, clock=clock.monotonic, transport=net.transport("mainpc"),
                      peers=[Peer("pc2", "mem://pc3")], config=SyncConfig(),
                      known_machines=["mainpc", "pc2", "pc3"])
    link = main.links[0]
    await link.step()
    assert (link.label, link.last_error, main.peer_up(link)) == ("pc2", "wrong_machine", False)


@pytest.mark.asyncio
async def test_the_cli_refuses_a_peer_it_cannot_name(tmp_path: Path) -> None:
    topo = tmp_path / "t.yaml"
    topo.write_text(yaml.safe_dump(three().model_dump(mode="json")))
    rc, _, err = await run_cli("hub", "--topology", str(topo), "--port", "0", "--data-dir", str(tmp_path),
                               "--peer", "http://127.0.0.2:43923")
    assert rc == 2 and err.count("\n") == 1
    assert "which machine's hub is it?" in err and "write NAME=URL" in err
