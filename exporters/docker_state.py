"""Every container's state from the Docker Engine API: running, restarts, OOM, limits.

``GET /containers/json?all=1`` lists containers, stopped ones too (a crashed service
must still show ``running 0``); ``GET /containers/<id>/json`` (inspect) adds what the
list lacks: ``RestartCount`` (restarts by the restart policy), ``State.OOMKilled`` (an
OOM kill hit the container's last run), ``State.StartedAt``/``FinishedAt`` (which run
is which), ``State.Pid`` and ``HostConfig.Memory``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from exporters.docker_api import PROJECT_LABEL, SERVICE_LABEL, connect_problem, short_id

#: Docker's zero time, for a container never started or never finished.
_ZERO = datetime.min.replace(tzinfo=UTC)
_TIME = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$")


def parse_time(text: object) -> datetime:
    """Docker's RFC 3339 times with up to nanoseconds; anything else is the zero time."""
    m = _TIME.match(text) if isinstance(text, str) else None
    if m is None:
        return _ZERO
    frac = (m.group(2) or "")[:6].ljust(6, "0")  # datetime keeps microseconds
    zone = "+00:00" if m.group(3) == "Z" else m.group(3)
    try:
        when = datetime.fromisoformat(f"{m.group(1)}.{frac}{zone}")
    except ValueError:
        return _ZERO
    return _ZERO if when.year <= 1 else when


@dataclass(frozen=True, slots=True)
class ContainerState:
    id: str
    service: str  # compose service, else the container name
    project: str | None
    running: bool  # running and not restarting
    restart_count: int
    oom_killed: bool  # an OOM kill hit the run that ended at ``finished_at``
    started_at: datetime  # the current (or last) run
    finished_at: datetime  # the last exit; zero time when none
    pid: int  # main process, host PID namespace; 0 when not running
    memory_limit_bytes: int  # HostConfig.Memory; 0: no limit


class DockerStateError(Exception):
    """The API did not answer usably; ``reason`` is short (unreachable, http_500, bad_response)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


class DockerStates:
    """Reads container states over the unix socket. Not thread-safe: one collector thread."""

    def __init__(self, socket_path: Path, *, timeout_seconds: float = 2.0) -> None:
        self.socket_path = socket_path
        self._timeout = timeout_seconds
        self._client: httpx.Client | None = httpx.Client(
            transport=httpx.HTTPTransport(uds=str(socket_path)), base_url="http://docker",
            timeout=timeout_seconds)

    def states(self, project: str | None = None) -> list[ContainerState]:
        """Every container (of compose ``project`` when given), inspected. A container
        removed between the list and its inspect is left out."""
        problem = connect_problem(self.socket_path, self._timeout)
        if problem is not None:
            raise DockerStateError("unreachable", str(problem))
        params: dict[str, str] = {"all": "1"}
        if project is not None:
            params["filters"] = json.dumps({"label": [f"{PROJECT_LABEL}={project}"]})
        listed = self._get("/containers/json", params)
        if not isinstance(listed, list):
            raise DockerStateError("bad_response", "expected a JSON list of containers")
        out: list[ContainerState] = []
        for item in listed:
            cid = item.get("Id") if isinstance(item, dict) else None
            if not isinstance(cid, str):
                raise DockerStateError("bad_response", "container without an Id")
            inspected = self._get(f"/containers/{cid}/json", {}, missing_ok=True)
            if inspected is None:
                continue
            out.append(_state(cid, inspected))
        return out

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _get(self, path: str, params: dict[str, str], missing_ok: bool = False) -> Any:
        if self._client is None:
            raise DockerStateError("closed")
        try:
            response = self._client.get(path, params=params)
            if missing_ok and response.status_code == 404:
                return None
            response.raise_for_status()
            return response.json()
        except httpx.HTTPStatusError as exc:
            raise DockerStateError(f"http_{exc.response.status_code}") from None
        except httpx.HTTPError as exc:
            raise DockerStateError("unreachable", str(exc)) from None
        except ValueError as exc:
            raise DockerStateError("bad_response", str(exc)) from None


def _state(cid: str, data: Any) -> ContainerState:
    if not isinstance(data, dict):
        raise DockerStateError("bad_response", f"inspect of {short_id(cid)} is not an object")
    state, config, host = _obj(data, "State"), _obj(data, "Config"), _obj(data, "HostConfig")
    labels = _obj(config, "Labels")
    service = labels.get(SERVICE_LABEL)
    if not isinstance(service, str) or not service:
        name = data.get("Name")
        service = name.lstrip("/") if isinstance(name, str) and name.strip("/") else short_id(cid)
    project = labels.get(PROJECT_LABEL)
    running = state.get("Running") is True and state.get("Restarting") is not True
    return ContainerState(
        id=cid, service=service, project=project if isinstance(project, str) else None,
        running=running, restart_count=_nonneg(data.get("RestartCount")),
        oom_killed=state.get("OOMKilled") is True,
        started_at=parse_time(state.get("StartedAt")),
        finished_at=parse_time(state.get("FinishedAt")),
        pid=_nonneg(state.get("Pid")) if running else 0,
        memory_limit_bytes=_nonneg(host.get("Memory")),
    )


def _obj(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def _nonneg(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0
