"""GPU processes -> compose services -> container groups, with their budgets."""

from __future__ import annotations

from exporters.attribution import Attributor, GroupUsage, ServiceUsage
from exporters.cgroups import ProcRoot
from exporters.docker_api import DockerDirectory
from exporters.nvml import GpuProcess
from exporters.testing.clock import StepClock
from exporters.testing.fake_docker import FakeDockerApi, compose_container
from exporters.testing.fake_proc import FakeProc, container_id, host_v2
from fleetobs.topology.model import GIB, Topology

MIB = 1024**2
LANG, VISION, STRAY = container_id(1), container_id(2), container_id(3)


def _attributor(fake_proc: FakeProc, docker: DockerDirectory, fleet: Topology) -> Attributor:
    return Attributor(ProcRoot(fake_proc.root), docker, fleet, "mainpc")


def test_processes_are_summed_per_service_and_group(
        fake_proc: FakeProc, docker_api: FakeDockerApi, clock: StepClock, fleet: Topology) -> None:
    docker_api.containers = [compose_container(LANG, "language-stack-gpu"),
                             compose_container(VISION, "vision-gpu"),
                             compose_container(STRAY, "jupyter")]
    fake_proc.add_in_container(10, LANG, "v2_systemd")
    fake_proc.add_in_container(11, LANG, "v1_cgroupfs")
    fake_proc.add_in_container(20, VISION, "v2_private_namespace")
    fake_proc.add_in_container(30, STRAY, "v2_cgroupfs")
    fake_proc.add(40, host_v2())
    docker = DockerDirectory(docker_api.socket_path, clock=clock)
    a = _attributor(fake_proc, docker, fleet).attribute({0: [
        GpuProcess(10, 3 * GIB), GpuProcess(11, 1 * GIB), GpuProcess(20, 7 * GIB),
        GpuProcess(30, 100 * MIB), GpuProcess(40, 50 * MIB)]})
    assert a.services == (
        ServiceUsage(0, "host", "", 50 * MIB, 1),
        ServiceUsage(0, "jupyter", "", 100 * MIB, 1),
        ServiceUsage(0, "language-stack-gpu", "language_stack_gpu", 4 * GIB, 2),
        ServiceUsage(0, "vision-gpu", "vision_gpu", 7 * GIB, 1),
    )
    groups = {g.group: g for g in a.groups}
    assert set(groups) == {g.name for g in fleet.groups_on("mainpc")}
    assert groups["language_stack_gpu"] == GroupUsage("language_stack_gpu", "language-stack-gpu",
                                                      4 * GIB, 20 * GIB)
    # vision_gpu is over its 6 GiB budget: used / budget is one division away
    assert groups["vision_gpu"].used_bytes / groups["vision_gpu"].budget_bytes > 1
    assert groups["reasoning_gpu"].used_bytes == 0
    assert a.skipped == {}
    docker.close()


def test_without_docker_services_are_container_ids(fake_proc: FakeProc, fleet: Topology) -> None:
    fake_proc.add_in_container(10, LANG, "podman")
    fake_proc.add_in_container(11, VISION, "containerd")
    a = _attributor(fake_proc, DockerDirectory(None), fleet).attribute(
        {0: [GpuProcess(10, GIB), GpuProcess(11, GIB)]})
    assert {(s.service, s.group) for s in a.services} == {(LANG[:12], ""), (VISION[:12], "")}


def test_gone_processes_are_skipped_and_counted(fake_proc: FakeProc, fleet: Topology) -> None:
    fake_proc.add(40, host_v2())
    a = _attributor(fake_proc, DockerDirectory(None), fleet).attribute(
        {0: [GpuProcess(40, GIB), GpuProcess(41, GIB), GpuProcess(42, None)]})
    assert a.skipped == {"process_gone": 2}
    assert [(s.service, s.used_bytes) for s in a.services] == [("host", GIB)]


def test_unknown_memory_counts_the_process_not_the_bytes(
        fake_proc: FakeProc, fleet: Topology) -> None:
    fake_proc.add(40, host_v2())
    a = _attributor(fake_proc, DockerDirectory(None), fleet).attribute({0: [GpuProcess(40, None)]})
    assert a.services == (ServiceUsage(0, "host", "", 0, 1),)
    assert a.skipped == {"memory_not_available": 1}


def test_pids_are_resolved_once_while_they_stay_on_the_gpu(
        fake_proc: FakeProc, fleet: Topology) -> None:
    fake_proc.add_in_container(10, LANG)
    attributor = _attributor(fake_proc, DockerDirectory(None), fleet)
    attributor.attribute({0: [GpuProcess(10, GIB)]})
    fake_proc.remove(10)  # /proc is not read again while pid 10 holds the GPU
    again = attributor.attribute({0: [GpuProcess(10, GIB)]})
    assert again.services[0].service == LANG[:12]
    attributor.attribute({0: []})  # it left the GPU: forgotten
    gone = attributor.attribute({0: [GpuProcess(10, GIB)]})
    assert gone.skipped == {"process_gone": 1}


def test_processes_on_several_gpus_add_up_per_group(
        fake_proc: FakeProc, docker_api: FakeDockerApi, clock: StepClock, fleet: Topology) -> None:
    docker_api.containers = [compose_container(LANG, "language-stack-gpu")]
    fake_proc.add_in_container(10, LANG)
    fake_proc.add_in_container(11, LANG)
    docker = DockerDirectory(docker_api.socket_path, clock=clock)
    a = _attributor(fake_proc, docker, fleet).attribute(
        {0: [GpuProcess(10, GIB)], 1: [GpuProcess(11, 2 * GIB), GpuProcess(10, GIB)]})
    assert [(s.gpu, s.used_bytes, s.processes) for s in a.services] == [(0, GIB, 1),
                                                                       (1, 3 * GIB, 2)]
    assert {g.group: g.used_bytes for g in a.groups}["language_stack_gpu"] == 4 * GIB
    docker.close()
