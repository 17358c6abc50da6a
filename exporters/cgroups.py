"""Host PID -> container id, from ``<proc root>/<pid>/cgroup``.

Every form seen in the wild:

* cgroup v1, cgroupfs driver: ``12:memory:/docker/<id>`` (one line per controller)
* cgroup v1/v2, systemd driver: ``0::/system.slice/docker-<id>.scope``
* cgroup v2, cgroupfs driver: ``0::/docker/<id>``
* a private cgroup namespace (the exporter itself in a container): ``0::/../docker-<id>.scope``
  (systemd driver) or ``0::/../<id>`` (cgroupfs driver)
* podman: ``0::/machine.slice/libpod-<id>.scope/container`` (``libpod-conmon-`` is the monitor)
* containerd (CRI): ``0::/kubepods.slice/.../cri-containerd-<id>.scope``

NVML reports host PIDs, so the exporter needs the host's /proc (``pid: host`` or the
host /proc mounted elsewhere, hence the injected root).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

# The innermost match wins: nested scopes (``.../docker-<id>.scope/init.scope``) still
# belong to the container.
# A bare 64-hex path segment is a container too: ``/docker/<id>``, ``/../<id>`` (cgroupfs
# driver seen from a private namespace), ``/kubepods/.../<id>``.
_CONTAINER = re.compile(
    r"(?:(?:docker|libpod|cri-containerd|crio)-(?P<scoped>[0-9a-f]{64})\.scope"
    r"|/(?P<plain>[0-9a-f]{64}))(?=/|$)"
)


class ProcessUnreadableError(Exception):
    """The process's cgroup file could not be read; ``reason`` is a metric label."""

    def __init__(self, pid: int, reason: str) -> None:
        super().__init__(f"pid {pid}: {reason}")
        self.pid = pid
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ProcRoot:
    """Where the host's /proc is visible."""

    path: Path = Path("/proc")

    def cgroup_text(self, pid: int) -> str:
        try:
            return (self.path / str(pid) / "cgroup").read_text(encoding="utf-8", errors="replace")
        except (FileNotFoundError, ProcessLookupError, NotADirectoryError):
            raise ProcessUnreadableError(pid, "process_gone") from None
        except PermissionError:
            raise ProcessUnreadableError(pid, "permission_denied") from None
        except OSError:
            raise ProcessUnreadableError(pid, "unreadable") from None

    def container_of(self, pid: int) -> str | None:
        """The 64-hex container id of ``pid``; None when it runs on the host."""
        return container_id_from_cgroup(self.cgroup_text(pid))


def container_id_from_cgroup(text: str) -> str | None:
    """The container id in a /proc/<pid>/cgroup file's text, or None (a host process).

    The unified (``0::``) line is read first; v1 controller lines are the fallback.
    """
    unified: list[str] = []
    legacy: list[str] = []
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        (unified if parts[0] == "0" and parts[1] == "" else legacy).append(parts[2])
    for path in (*unified, *legacy):
        found = _last_match(path)
        if found is not None:
            return found
    return None


def _last_match(path: str) -> str | None:
    last = None
    for m in _CONTAINER.finditer(path):
        last = m.group("scoped") or m.group("plain")
    return last
