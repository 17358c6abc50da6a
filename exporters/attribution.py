"""GPU processes -> compose services -> container groups, against their budgets.

host PID -> cgroup -> container id (:mod:`exporters.cgroups`) -> compose service
(:mod:`exporters.docker_api`) -> container group (the topology: ``Group.service_name``).
A process in no container is ``service="host"``; a service no group claims has
``group=""``. The PID -> container answer is cached while the PID stays on the GPU:
a PID cannot be reused while its process still holds a GPU context, so steady
collections read nothing from /proc.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from exporters.cgroups import ProcessUnreadableError, ProcRoot
from exporters.docker_api import DockerDirectory
from exporters.nvml import GpuProcess
from fleetobs.topology.model import Topology

HOST_SERVICE = "host"
NO_GROUP = ""


@dataclass(frozen=True, slots=True)
class ServiceUsage:
    gpu: int
    service: str
    group: str
    used_bytes: int
    processes: int


@dataclass(frozen=True, slots=True)
class GroupUsage:
    group: str
    service: str
    used_bytes: int
    budget_bytes: int


@dataclass(frozen=True, slots=True)
class Attribution:
    services: tuple[ServiceUsage, ...] = ()
    groups: tuple[GroupUsage, ...] = ()
    #: processes skipped or counted without memory in this round, by reason
    skipped: Mapping[str, int] = field(default_factory=dict)


class Attributor:
    def __init__(self, proc: ProcRoot, docker: DockerDirectory, topology: Topology,
                 machine: str) -> None:
        self._proc = proc
        self._docker = docker
        self._groups = topology.groups_on(machine)
        self._group_of_service = {g.service_name: g.name for g in self._groups}
        self._container_of: dict[int, str | None] = {}

    def attribute(self, per_gpu: Mapping[int, Sequence[GpuProcess]]) -> Attribution:
        skipped: Counter[str] = Counter()
        seen: dict[int, str | None] = {}
        usage: dict[tuple[int, str, str], list[int]] = {}
        for gpu, processes in per_gpu.items():
            for p in processes:
                try:
                    cid = seen[p.pid] if p.pid in seen else self._container(p.pid)
                except ProcessUnreadableError as exc:
                    skipped[exc.reason] += 1
                    continue
                seen[p.pid] = cid
                service, group = self._service(cid)
                if p.used_bytes is None:
                    skipped["memory_not_available"] += 1  # counted as a process, 0 bytes
                slot = usage.setdefault((gpu, service, group), [0, 0])
                slot[0] += p.used_bytes or 0
                slot[1] += 1
        self._container_of = seen  # forget PIDs that left the GPU
        services = tuple(ServiceUsage(gpu, service, group, used, n)
                         for (gpu, service, group), (used, n) in sorted(usage.items()))
        by_group: Counter[str] = Counter()
        for s in services:
            by_group[s.group] += s.used_bytes
        groups = tuple(GroupUsage(g.name, g.service_name, by_group.get(g.name, 0),
                                  g.gpu_memory_budget_bytes) for g in self._groups)
        return Attribution(services, groups, dict(skipped))

    def _container(self, pid: int) -> str | None:
        if pid in self._container_of:
            return self._container_of[pid]
        return self._proc.container_of(pid)

    def _service(self, container_id: str | None) -> tuple[str, str]:
        if container_id is None:
            return HOST_SERVICE, NO_GROUP
        service, _project = self._docker.service_of(container_id)
        return service, self._group_of_service.get(service, NO_GROUP)
