"""GPU view plugin: where is there free VRAM, and which group uses how much of its budget.

The hub polls its machine's GPU exporter (``FLEET_GPU_EXPORTER_URL``, its
``GET /v1/gpus`` JSON) and serves ``GET /v1/gpus``: each GPU with its free memory and
each container group of this machine with its use against its budget (budgets from
the hub's own topology). The exporter's JSON is untrusted input: it is validated, and
a bad or missing answer is reported as such, never served as data. Disabled (factory
returns None) when no exporter URL is configured.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Query
from loguru import logger
from prometheus_client.registry import Collector
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hub.plugins import HubContext, HubPlugin

DEFAULT_POLL_SECONDS = 5.0
#: Older than this many poll intervals, the last answer is flagged stale.
STALE_AFTER_POLLS = 3


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class ExporterGpu(_Lenient):
    index: int = Field(ge=0)
    uuid: str
    name: str
    memory_total_bytes: int | None = Field(None, ge=0)
    memory_used_bytes: int | None = Field(None, ge=0)
    memory_reserved_bytes: int | None = Field(None, ge=0)
    memory_free_bytes: int | None = Field(None, ge=0)
    utilization_ratio: float | None = Field(None, ge=0, le=1)


class ExporterGroup(_Lenient):
    group: str
    used_bytes: int = Field(ge=0)


class ExporterNvml(_Lenient):
    up: bool
    reason: str | None = None


class ExporterView(_Lenient):
    """The part of the exporter's ``/v1/gpus`` the hub relies on."""

    machine: str
    age_seconds: float = Field(ge=0)
    nvml: ExporterNvml
    gpus: tuple[ExporterGpu, ...] = ()
    groups: tuple[ExporterGroup, ...] = ()


class GpuPlugin:
    name = "gpu"

    def __init__(self, ctx: HubContext, exporter_url: str, *,
                 poll_seconds: float = DEFAULT_POLL_SECONDS, timeout_seconds: float = 2.0,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._ctx = ctx
        self.exporter_url = exporter_url.rstrip("/")
        self.poll_seconds = poll_seconds
        self._client = httpx.AsyncClient(base_url=self.exporter_url, timeout=timeout_seconds,
                                         transport=transport)
        self._view: ExporterView | None = None
        self._fetched_at: float | None = None  # hub clock, last good answer
        self._error: str | None = "not fetched yet"
        self._task: asyncio.Task[None] | None = None
        self._stopped = False

    # --- HubPlugin ---------------------------------------------------------------------
    def router(self) -> APIRouter | None:
        router = APIRouter(tags=["gpus"])

        @router.get("/v1/gpus", summary="GPUs with free memory; groups against their budgets")
        async def gpus(
            min_free_bytes: Annotated[int | None, Query(
                ge=0, description="only GPUs with at least this much free memory")] = None,
        ) -> dict[str, Any]:
            return self.view(min_free_bytes)

        return router

    def collectors(self) -> Sequence[Collector]:
        return []  # Prometheus scrapes the exporter itself; the hub adds no GPU series

    async def start(self) -> None:
        if self._task is None and not self._stopped:
            self._task = asyncio.create_task(self._run(), name="hub-gpu")

    async def stop(self, deadline_seconds: float) -> None:
        """Cancel polling and close the client; idempotent, bounded by the deadline."""
        self._stopped = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(task, timeout=deadline_seconds)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._client.aclose(), timeout=deadline_seconds)

    # --- polling -----------------------------------------------------------------------
    async def fetch_once(self) -> bool:
        """Read the exporter once; True when it gave a valid answer."""
        try:
            response = await self._client.get("/v1/gpus")
            response.raise_for_status()
            view = ExporterView.model_validate(response.json())
        except httpx.HTTPStatusError as exc:
            return self._fail(f"exporter answered HTTP {exc.response.status_code}")
        except httpx.HTTPError as exc:
            return self._fail(f"exporter unreachable: {type(exc).__name__}")
        except (ValueError, ValidationError) as exc:
            return self._fail(f"exporter sent an invalid answer: {_first_line(exc)}")
        if view.machine != self._ctx.machine:
            return self._fail(f"exporter reports machine {view.machine!r}, "
                              f"this hub is {self._ctx.machine!r}")
        self._view, self._fetched_at, self._error = view, self._ctx.now(), None
        return True

    def _fail(self, error: str) -> bool:
        if error != self._error:
            logger.warning("GPU view: {} ({})", error, self.exporter_url)
        self._error = error
        return False

    async def _run(self) -> None:
        while True:
            try:
                await self.fetch_once()
            except Exception:  # noqa: BLE001 - one bad poll must not end polling
                logger.exception("GPU view poll failed")
            await asyncio.sleep(self.poll_seconds)

    # --- the view ----------------------------------------------------------------------
    def view(self, min_free_bytes: int | None = None) -> dict[str, Any]:
        view, now = self._view, self._ctx.now()
        age = None if self._fetched_at is None or view is None else \
            round(now - self._fetched_at + view.age_seconds, 3)
        data_ok = view is not None and view.nvml.up
        used = {g.group: g.used_bytes for g in view.groups} if view is not None and data_ok else {}
        gpus = [g for g in view.gpus] if view is not None and data_ok else []
        if min_free_bytes is not None:
            gpus = [g for g in gpus if (g.memory_free_bytes or 0) >= min_free_bytes]
        groups = []
        for grp in self._ctx.topology.groups_on(self._ctx.machine):
            budget = grp.gpu_memory_budget_bytes
            u = used.get(grp.name) if data_ok else None
            groups.append({
                "group": grp.name, "service": grp.service_name, "used_bytes": u,
                "budget_bytes": budget,
                "used_ratio_of_budget": round(u / budget, 4) if u is not None and budget else None,
                "over_budget": (u > budget) if u is not None and budget else None,
            })
        return {
            "machine": self._ctx.machine,
            "exporter": {
                "url": self.exporter_url,
                "error": self._error,
                "age_seconds": age,
                "stale": age is None or age > self.poll_seconds * STALE_AFTER_POLLS,
                "nvml_up": view.nvml.up if view is not None else None,
                "nvml_reason": view.nvml.reason if view is not None else None,
            },
            "gpus": [{
                "index": g.index, "uuid": g.uuid, "name": g.name,
                "memory_total_bytes": g.memory_total_bytes,
                "memory_used_bytes": g.memory_used_bytes,
                "memory_reserved_bytes": g.memory_reserved_bytes,
                "memory_free_bytes": g.memory_free_bytes,
                "utilization_ratio": g.utilization_ratio,
            } for g in gpus],
            "groups": groups,
        }


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__


def gpu_plugin(ctx: HubContext) -> HubPlugin | None:
    """The plugin, or ``None`` when no GPU exporter URL is configured."""
    url = ctx.settings.gpu_exporter_url
    if not url:
        return None
    return GpuPlugin(ctx, url)
