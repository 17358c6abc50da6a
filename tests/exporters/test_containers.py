"""Per compose service container figures: what the Docker API and the cgroups say, folded
into monotonic counters across restarts, OOM kills and replaced containers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from exporters.cgroup_stats import CgroupTree
from exporters.containers import ContainerMonitor, ServiceContainers
from exporters.docker_state import DockerStates
from exporters.testing.clock import StepClock
from exporters.testing.fake_cgroup import FakeCgroups, Usage
from exporters.testing.fake_docker import FakeDockerApi, inspect
from exporters.testing.fake_proc import container_id
from fleetobs.topology.model import Topology

MIB = 1024**2
VISION, VISION2, HUB, OTHER = container_id(1), container_id(2), container_id(3), container_id(4)
T0, T1, T2 = "2026-01-01T10:00:00.5Z", "2026-01-01T10:05:00.25Z", "2026-01-01T10:05:01Z"


class Rig:
    def __init__(self, api: FakeDockerApi, cgroups: FakeCgroups, fleet: Topology, clock: StepClock,
                 project: str | None = "mainpc") -> None:
        self.api, self.cgroups, self.clock = api, cgroups, clock
        self.monitor = ContainerMonitor(DockerStates(api.socket_path), CgroupTree(cgroups.root),
                                        fleet, "mainpc", project=project, refresh_seconds=5, clock=clock)

    def collect(self) -> dict[str, ServiceContainers]:
        self.clock.advance(5)
        view = self.monitor.collect()
        assert view.up, view.reason
        return {s.service: s for s in view.services}


@pytest.fixture
def rig(docker_api: FakeDockerApi, tmp_path: Path, fleet: Topology, clock: StepClock) -> Iterator[Rig]:
    r = Rig(docker_api, FakeCgroups(tmp_path / "cgroup", 2), fleet, clock)
    yield r
    r.monitor.close()


def test_a_running_service_has_every_figure(rig: Rig) -> None:
    rig.api.set(inspect(VISION, "vision-gpu", "mainpc", restart_count=2, started_at=T0,
                        memory_limit=512 * MIB))
    rig.cgroups.set(VISION, Usage(cpu_seconds=3.5, memory_bytes=300 * MIB, inactive_file_bytes=100 * MIB,
                                  limit_bytes=512 * MIB, oom_kills=0))
    v = rig.collect()["vision-gpu"]
    assert v.group == "vision_gpu"
    assert (v.running, v.cpu_seconds, v.memory_working_set_bytes, v.memory_limit_bytes) == \
        (True, 3.5, 200 * MIB, 512 * MIB)
    assert (v.oom_kills, v.restarts) == (0, 2)


def test_a_group_without_a_container_is_not_running(rig: Rig) -> None:
    rig.api.set(inspect(HUB, "hub", "mainpc"))
    rig.cgroups.set(HUB, Usage(cpu_seconds=1))
    services = rig.collect()
    assert services["hub"].group == ""  # a stack service: no group claims it
    for svc in ("core-platform", "vision-gpu", "audio-emotion"):
        assert services[svc].running is False
        assert services[svc].memory_working_set_bytes is None  # no series, not a made-up 0


def test_an_oom_kill_between_two_reads_is_counted_once(rig: Rig) -> None:
    """The main process is OOM-killed and the restart policy restarts it before the next
    read: the cgroup is new (0 kills) and only Docker's OOMKilled tells."""
    rig.api.set(inspect(VISION, "vision-gpu", "mainpc", started_at=T0))
    rig.cgroups.set(VISION, Usage(cpu_seconds=10, memory_bytes=100 * MIB))
    assert rig.collect()["vision-gpu"].oom_kills == 0
    rig.api.set(inspect(VISION, "vision-gpu", "mainpc", started_at=T2, finished_at=T1,
                        oom_killed=True, restart_count=1))
    rig.cgroups.set(VISION, Usage(cpu_seconds=0.5, memory_bytes=20 * MIB))
    v = rig.collect()["vision-gpu"]
    assert (v.oom_kills, v.restarts) == (1, 1)
    assert v.cpu_seconds == pytest.approx(10.5)  # the first run's CPU is kept
    assert rig.collect()["vision-gpu"].oom_kills == 1  # the same exit, read again


def test_a_kill_seen_in_the_cgroup_and_then_as_the_exit_counts_once(rig: Rig) -> None:
    rig.api.set(inspect(VISION, "vision-gpu", "mainpc", started_at=T0))
    rig.cgroups.set(VISION, Usage(oom_kills=1))
    assert rig.collect()["vision-gpu"].oom_kills == 1
    rig.cgroups.remove(VISION)
    rig.api.set(inspect(VISION, "vision-gpu", "mainpc", running=False, started_at=T0, finished_at=T1,
                        oom_killed=True))
    v = rig.collect()["vision-gpu"]
    assert (v.running, v.oom_kills) == (False, 1)


def test_kills_of_child_processes_count_while_the_container_lives(rig: Rig) -> None:
    rig.api.set(inspect(VISION, "vision-gpu", "mainpc", started_at=T0))
    for kills in (1, 2, 2, 3):
        rig.cgroups.set(VISION, Usage(oom_kills=kills))
        assert rig.collect()["vision-gpu"].oom_kills == kills


def test_an_old_oom_exit_seen_at_start_is_history(rig: Rig) -> None:
    """The exporter starts after a container was OOM-killed and restarted: that kill counts."""
    rig.api.set(inspect(VISION, "vision-gpu", "mainpc", started_at=T2, finished_at=T1,
                        oom_killed=True, restart_count=1))
    rig.cgroups.set(VISION, Usage())
    assert rig.collect()["vision-gpu"].oom_kills == 1


def test_counters_survive_a_replaced_container(rig: Rig) -> None:
    """``docker compose up`` recreates the service: a new container id, counters from 0."""
    rig.api.set(inspect(VISION, "vision-gpu", "mainpc", started_at=T0, restart_count=2))
    rig.cgroups.set(VISION, Usage(cpu_seconds=10, oom_kills=1))
    rig.collect()
    rig.cgroups.remove(VISION)
    rig.api.set(inspect(VISION2, "vision-gpu", "mainpc", started_at=T2))
    rig.cgroups.set(VISION2, Usage(cpu_seconds=1))
    v = rig.collect()["vision-gpu"]
    assert (v.cpu_seconds, v.oom_kills, v.restarts) == (11, 1, 2)
    # And the service's counters stay when it has no container at all.
    rig.api.set()
    v = rig.collect()["vision-gpu"]
    assert (v.running, v.cpu_seconds, v.oom_kills, v.restarts) == (False, 11, 1, 2)


def test_a_restart_count_reset_does_not_lower_the_counter(rig: Rig) -> None:
    rig.api.set(inspect(VISION, "vision-gpu", "mainpc", started_at=T0, restart_count=4))
    rig.cgroups.set(VISION, Usage())
    assert rig.collect()["vision-gpu"].restarts == 4
    rig.api.set(inspect(VISION, "vision-gpu", "mainpc", started_at=T2, restart_count=0))  # docker start
    assert rig.collect()["vision-gpu"].restarts == 4
    rig.api.set(inspect(VISION, "vision-gpu", "mainpc", started_at=T2, restart_count=1))
    assert rig.collect()["vision-gpu"].restarts == 5


def test_only_the_project_is_read(rig: Rig) -> None:
    rig.api.set(inspect(HUB, "hub", "mainpc"), inspect(OTHER, "hub", "pc2"))
    rig.cgroups.set(HUB, Usage(cpu_seconds=1))
    rig.cgroups.set(OTHER, Usage(cpu_seconds=100))
    assert rig.collect()["hub"].cpu_seconds == 1


def test_reads_are_throttled(rig: Rig) -> None:
    rig.api.set(inspect(HUB, "hub", "mainpc"))
    rig.collect()
    before = len(rig.api.requests)
    rig.monitor.collect()  # no time passed: the last view
    rig.clock.advance(4.9)
    rig.monitor.collect()
    assert len(rig.api.requests) == before


def test_docker_down_means_no_figures_and_a_reason(tmp_path: Path, fleet: Topology, clock: StepClock) -> None:
    monitor = ContainerMonitor(DockerStates(tmp_path / "no.sock"), CgroupTree(tmp_path), fleet, "mainpc",
                               clock=clock)
    view = monitor.collect()
    monitor.close()
    assert (view.up, view.reason, view.services) == (False, "unreachable", ())
    assert ContainerMonitor(None, CgroupTree(tmp_path), fleet, "mainpc").collect().reason == "no_socket"


def test_v1_cgroups_feed_the_same_figures(docker_api: FakeDockerApi, tmp_path: Path, fleet: Topology,
                                          clock: StepClock) -> None:
    r = Rig(docker_api, FakeCgroups(tmp_path / "cg", 1, "cgroupfs", "cpuacct"), fleet, clock)
    r.api.set(inspect(VISION, "vision-gpu", "mainpc", started_at=T0))
    r.cgroups.set(VISION, Usage(cpu_seconds=2, memory_bytes=64 * MIB, limit_bytes=128 * MIB, oom_kills=1))
    v = r.collect()["vision-gpu"]
    r.monitor.close()
    assert (v.cpu_seconds, v.memory_working_set_bytes, v.memory_limit_bytes, v.oom_kills) == \
        (2, 64 * MIB, 128 * MIB, 1)
