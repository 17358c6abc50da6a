"""Fake host cgroup trees (v2 unified, v1 per controller) with a container's files.

The files and their formats are the kernel's (Documentation/admin-guide/cgroup-v2.rst,
cgroup-v1/memory.rst and cpuacct.rst), at the paths Docker uses for the systemd and
cgroupfs drivers. The Docker tests read the real ones.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

V1_UNLIMITED = 9223372036854771712  # what memory.limit_in_bytes says with no limit (4 KiB pages)


@dataclass
class Usage:
    cpu_seconds: float = 0.0
    memory_bytes: int = 0
    inactive_file_bytes: int = 0
    limit_bytes: int = 0  # 0: none
    oom_kills: int = 0


class FakeCgroups:
    def __init__(self, root: Path, version: Literal[1, 2] = 2,
                 driver: Literal["systemd", "cgroupfs"] = "systemd",
                 v1_cpu_dir: str = "cpu,cpuacct") -> None:
        self.root = root
        self.version = version
        self.driver = driver
        self.v1_cpu_dir = v1_cpu_dir
        root.mkdir(parents=True, exist_ok=True)
        if version == 2:
            (root / "cgroup.controllers").write_text("cpuset cpu io memory hugetlb pids rdma misc\n")
        else:
            (root / "memory").mkdir(exist_ok=True)
            (root / v1_cpu_dir).mkdir(exist_ok=True)
            (root / "unified").mkdir(exist_ok=True)  # the hybrid layout: an empty v2 mount
            (root / v1_cpu_dir / "cpuacct.usage").write_text("123456789\n")  # the root's own

    def rel(self, container_id: str) -> str:
        if self.driver == "systemd":
            return f"system.slice/docker-{container_id}.scope"
        return f"docker/{container_id}"

    def dirs(self, container_id: str) -> list[Path]:
        if self.version == 2:
            return [self.root / self.rel(container_id)]
        return [self.root / "memory" / self.rel(container_id),
                self.root / self.v1_cpu_dir / self.rel(container_id)]

    def set(self, container_id: str, usage: Usage) -> None:
        """Create or update the container's cgroup files."""
        for d in self.dirs(container_id):
            d.mkdir(parents=True, exist_ok=True)
        u = usage
        if self.version == 2:
            d = self.dirs(container_id)[0]
            usec = int(u.cpu_seconds * 1e6)
            (d / "cpu.stat").write_text(f"usage_usec {usec}\nuser_usec {usec * 3 // 4}\n"
                                        f"system_usec {usec // 4}\nnr_periods 0\nnr_throttled 0\n"
                                        "throttled_usec 0\n")
            (d / "memory.current").write_text(f"{u.memory_bytes}\n")
            (d / "memory.stat").write_text(
                f"anon {u.memory_bytes - u.inactive_file_bytes}\nfile {u.inactive_file_bytes}\n"
                f"active_anon 0\ninactive_anon 0\nactive_file 0\ninactive_file {u.inactive_file_bytes}\n")
            (d / "memory.max").write_text(f"{u.limit_bytes or 'max'}\n")
            (d / "memory.events").write_text(f"low 0\nhigh 0\nmax {u.oom_kills * 3}\noom {u.oom_kills}\n"
                                             f"oom_kill {u.oom_kills}\noom_group_kill 0\n")
            return
        mem, cpu = self.dirs(container_id)
        (cpu / "cpuacct.usage").write_text(f"{int(u.cpu_seconds * 1e9)}\n")
        (mem / "memory.usage_in_bytes").write_text(f"{u.memory_bytes}\n")
        (mem / "memory.stat").write_text(
            f"cache {u.inactive_file_bytes}\nrss {u.memory_bytes - u.inactive_file_bytes}\n"
            f"inactive_file {u.inactive_file_bytes}\ntotal_cache {u.inactive_file_bytes}\n"
            f"total_rss {u.memory_bytes - u.inactive_file_bytes}\n"
            f"total_inactive_file {u.inactive_file_bytes}\n")
        (mem / "memory.limit_in_bytes").write_text(f"{u.limit_bytes or V1_UNLIMITED}\n")
        (mem / "memory.oom_control").write_text(f"oom_kill_disable 0\nunder_oom 0\noom_kill {u.oom_kills}\n")

    def remove(self, container_id: str) -> None:
        """The container stopped: its cgroup is gone."""
        for d in self.dirs(container_id):
            shutil.rmtree(d, ignore_errors=True)
