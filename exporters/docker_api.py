"""Container id -> compose service, from the Docker Engine API on its unix socket.

``GET /containers/json`` lists running containers with their labels; compose sets
``com.docker.compose.project`` and ``com.docker.compose.service``. The list is cached
and refreshed every ``refresh_seconds``, and early (at most every
``min_refresh_seconds``) when an unknown container id shows up. Without a socket, or
when the API does not answer, services fall back to the short container id and
:attr:`DockerDirectory.reason` says why.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from loguru import logger

SERVICE_LABEL = "com.docker.compose.service"
PROJECT_LABEL = "com.docker.compose.project"


@dataclass(frozen=True, slots=True)
class ContainerInfo:
    id: str
    service: str  # compose service, else the container name
    project: str | None


def short_id(container_id: str) -> str:
    return container_id[:12]


class DockerDirectory:
    """Cached view of the running containers. Not thread-safe: one collector thread."""

    def __init__(self, socket_path: Path | None, *, clock: Callable[[], float] = time.monotonic,
                 refresh_seconds: float = 30.0, min_refresh_seconds: float = 2.0,
                 timeout_seconds: float = 1.0) -> None:
        self._socket = socket_path
        self._clock = clock
        self._refresh = refresh_seconds
        self._min_refresh = min_refresh_seconds
        self._timeout = timeout_seconds
        self._containers: dict[str, ContainerInfo] = {}
        self._fetched_at: float | None = None
        self._client: httpx.Client | None = None
        self._logged: str | None = None
        self.reason: str | None = "no_socket" if socket_path is None else "not_queried"
        if socket_path is not None:
            self._client = httpx.Client(transport=httpx.HTTPTransport(uds=str(socket_path)),
                                        base_url="http://docker", timeout=timeout_seconds)

    @property
    def up(self) -> bool:
        return self.reason is None

    def service_of(self, container_id: str) -> tuple[str, str | None]:
        """(service, compose project) for a container; the short id when unknown."""
        info = self.lookup(container_id)
        if info is None:
            return short_id(container_id), None
        return info.service, info.project

    def lookup(self, container_id: str) -> ContainerInfo | None:
        now = self._clock()
        stale = self._fetched_at is None or now - self._fetched_at >= self._refresh
        unknown = container_id not in self._containers
        may_refresh = self._fetched_at is None or now - self._fetched_at >= self._min_refresh
        if self._client is not None and (stale or (unknown and may_refresh)):
            self.refresh()
        return self._containers.get(container_id)

    def refresh(self) -> None:
        if self._client is None:
            return
        self._fetched_at = self._clock()
        problem = self._connect_problem()
        if problem is not None:
            self._down("unreachable", problem)
            return
        try:
            response = self._client.get("/containers/json")
            response.raise_for_status()
            self._containers = _parse(response.json())
        except httpx.HTTPStatusError as exc:
            self._down(f"http_{exc.response.status_code}")
        except httpx.HTTPError as exc:
            self._down("unreachable", exc)
        except ValueError as exc:  # JSON or shape
            self._down("bad_response", exc)
        else:
            if self.reason is not None and self._logged is not None:
                logger.info("docker API at {} answers again", self._socket)
            self.reason = None
            self._logged = None

    def _connect_problem(self) -> OSError | None:
        assert self._socket is not None
        return connect_problem(self._socket, self._timeout)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _down(self, reason: str, exc: Exception | None = None) -> None:
        self.reason = reason
        if self._logged != reason:  # once per reason, not once per collection
            logger.warning("docker API at {} unusable ({}): services fall back to container "
                           "ids{}", self._socket, reason, f": {exc}" if exc else "")
            self._logged = reason


def connect_problem(socket_path: Path, timeout_seconds: float) -> OSError | None:
    """Connect once ourselves first: httpcore (1.0.x) leaks its socket when a unix
    connect fails, which would leak one per refresh while Docker is down."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout_seconds)
        sock.connect(str(socket_path))
    except OSError as exc:
        return exc
    finally:
        sock.close()
    return None


def _parse(payload: Any) -> dict[str, ContainerInfo]:
    if not isinstance(payload, list):
        raise ValueError("expected a JSON list of containers")
    out: dict[str, ContainerInfo] = {}
    for item in payload:
        if not isinstance(item, dict) or not isinstance(item.get("Id"), str):
            raise ValueError("container without an Id")
        labels = item.get("Labels") or {}
        names = item.get("Names") or []
        if not isinstance(labels, dict) or not isinstance(names, list):
            raise ValueError("Labels must be an object and Names a list")
        service = labels.get(SERVICE_LABEL)
        if not isinstance(service, str) or not service:
            first = names[0] if names and isinstance(names[0], str) else ""
            service = first.lstrip("/") or short_id(item["Id"])
        project = labels.get(PROJECT_LABEL)
        out[item["Id"]] = ContainerInfo(item["Id"], service,
                                        project if isinstance(project, str) else None)
    return out
