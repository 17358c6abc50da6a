"""Fake /proc trees: ``<root>/<pid>/cgroup`` in every form the exporter must read."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path


def v1_cgroupfs(cid: str) -> str:
    """cgroup v1, Docker's cgroupfs driver: one line per controller."""
    return "".join(f"{n}:{c}:/docker/{cid}\n" for n, c in (
        (12, "pids"), (11, "memory"), (10, "devices"), (4, "cpu,cpuacct"), (1, "name=systemd")))


def v2_systemd(cid: str) -> str:
    return f"0::/system.slice/docker-{cid}.scope\n"


def v2_cgroupfs(cid: str) -> str:
    return f"0::/docker/{cid}\n"


def v2_private_namespace(cid: str) -> str:
    """Seen from inside another container with ``cgroupns: private``."""
    return f"0::/../docker-{cid}.scope\n"


def v2_private_namespace_cgroupfs(cid: str) -> str:
    """The cgroupfs driver seen from another container's private cgroup namespace."""
    return f"0::/../{cid}\n"


def podman(cid: str) -> str:
    return f"0::/machine.slice/libpod-{cid}.scope/container\n"


def containerd(cid: str) -> str:
    return ("0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1a2b.slice/"
            f"cri-containerd-{cid}.scope\n")


def host_v2() -> str:
    return "0::/user.slice/user-1000.slice/session-2.scope\n"


def host_v1() -> str:
    return "12:pids:/user.slice/user-1000.slice\n1:name=systemd:/user.slice/user-1000.slice/session-2.scope\n"


FORMS: dict[str, Callable[[str], str]] = {
    "v1_cgroupfs": v1_cgroupfs,
    "v2_systemd": v2_systemd,
    "v2_cgroupfs": v2_cgroupfs,
    "v2_private_namespace": v2_private_namespace,
    "v2_private_namespace_cgroupfs": v2_private_namespace_cgroupfs,
    "podman": podman,
    "containerd": containerd,
}


def container_id(n: int) -> str:
    """A deterministic 64-hex container id."""
    return f"{n:08x}" * 8


class FakeProc:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def add(self, pid: int, cgroup: str) -> None:
        d = self.root / str(pid)
        d.mkdir(exist_ok=True)
        (d / "cgroup").write_text(cgroup, encoding="utf-8")

    def add_in_container(self, pid: int, cid: str, form: str = "v2_systemd") -> None:
        self.add(pid, FORMS[form](cid))

    def remove(self, pid: int) -> None:
        """The process exited: its directory is gone."""
        d = self.root / str(pid)
        for f in d.iterdir():
            f.unlink()
        d.rmdir()
