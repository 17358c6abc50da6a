"""The alerting stack on real processes (fleetobs.testing.alerting_stack), shared by the
tests of a module: each test undoes its fault and waits for calm before the next one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fleetobs.testing.alerting_stack import AlertingStack, StackOptions
from fleetobs.testing.binaries import require_binary
from fleetobs.topology.load import load_topology
from fleetobs.topology.model import ProbeKind


def agents_in_big_groups(machine: str, count: int) -> list[str]:
    """One probed agent from each of ``count`` groups of ``machine`` with 3+ probed agents:
    losing it raises that agent's alert, no group alert."""
    topo = load_topology(None)
    out = []
    for g in topo.groups_on(machine):
        probed = [a.name for a in topo.agents_in(g.name) if a.probe in (ProbeKind.ZMQ, ProbeKind.HTTP)]
        if len(probed) >= 3:
            out.append(probed[-1])
    assert len(out) >= count, f"{machine} has only {len(out)} groups of 3+ probed agents"
    return out[:count]


#: The agent killed for real (SIGKILL of its own ``fleetobs simulate`` process).
VICTIM = agents_in_big_groups("mainpc", 1)[0]
#: The pc2 agent that comes back late after pc2's hub restarts.
STRAGGLER = agents_in_big_groups("pc2", 1)[0]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AlertingStack]:
    for binary in (("prometheus",), ("prometheus-alertmanager", "alertmanager"), ("victoria-metrics",)):
        require_binary(*binary)
    work: Path = tmp_path_factory.mktemp("alerting")
    st = AlertingStack(work, StackOptions(units={"victim": [VICTIM]}, remote_write=True))
    try:
        st.start()
        yield st
    finally:
        st.stop()
