"""GPU view plugin: where is there free VRAM, and which group uses how much of its budget.

The hub polls its machine's GPU exporter (``FLEET_GPU_EXPORTER_URL``, its
``GET /v1/gpus`` JSON) and serves ``GET /v1/gpus``: each GPU with its free memory and
each container group of this machine with its use against its budget (budgets from
the hub's own topology). The exporter's JSON is untrusted input: it is validated, and
a bad or missing answer is reported as such, never served as data. Disabled (factory
returns None) when no exporter URL is configured.

With sync (hub/sync/), this machine's summary (:meth:`GpuPlugin.summary`, through
``Hub.gpu_summary``) travels to the peers, and theirs come back through
``Hub.peer_gpus``: ``GET /v1/gpus`` also lists every machine (``machines``, with the
age and freshness of each peer's summary) and free VRAM per machine (``free_vram``),
so either hub answers "where is there free VRAM". The HTTP client is built on the first
poll (hub.lazy_client), not at start.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from loguru import logger
from prometheus_client.registry import Collector
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from fleetobs.topology.model import NAME_PATTERN
from hub.api.models import CleanText
from hub.lazy_client import LazyClient
from hub.plugins import HubContext, HubPlugin
from hub.service import Hub
from hub.tasks import cancel_and_wait

if TYPE_CHECKING:
    import httpx

DEFAULT_POLL_SECONDS = 5.0
#: What a summary sent to peers may list (hub.sync.protocol.MAX_GPUS / MAX_GPU_GROUPS).
MAX_SENT_GPUS = 16
MAX_SENT_GROUPS = 256
#: Older than this many poll intervals, the last answer is flagged stale.
STALE_AFTER_POLLS = 3


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, allow_inf_nan=False)


class ExporterGpu(_Lenient):
    index: int = Field(ge=0)
    uuid: CleanText
    name: CleanText
    memory_total_bytes: int | None = Field(None, ge=0)
    memory_used_bytes: int | None = Field(None, ge=0)
    memory_reserved_bytes: int | None = Field(None, ge=0)
    memory_free_bytes: int | None = Field(None, ge=0)
    utilization_ratio: float | None = Field(None, ge=0, le=1)


class ExporterGroup(_Lenient):
    group: CleanText
    used_bytes: int = Field(ge=0)


class ExporterNvml(_Lenient):
    up: bool
    reason: CleanText | None = None


class ExporterView(_Lenient):
    """The part of the exporter's ``/v1/gpus`` the hub relies on."""

    machine: CleanText
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
        self.timeout_seconds = timeout_seconds
        self._transport = transport
        self._client = LazyClient(self._build)
        self._view: ExporterView | None = None
        self._fetched_at: float | None = None  # hub clock, last good answer
        self._error: str | None = "not fetched yet"
        #: Grows with every new reading and every new error: the version peers compare.
        self._seq = 0
        self._task: asyncio.Task[None] | None = None
        self._stopped = False

    # --- HubPlugin ---------------------------------------------------------------------
    def router(self) -> APIRouter | None:
        router = APIRouter(tags=["gpus"])

        @router.get("/v1/gpus", summary="GPUs with free memory; groups against their budgets",
                    responses={404: {"description": "``machine`` is not in the topology"}})
        async def gpus(
            min_free_bytes: Annotated[int | None, Query(
                ge=0, description="only GPUs with at least this much free memory")] = None,
            machine: Annotated[str | None, Query(
                pattern=NAME_PATTERN, description="only this machine in machines/free_vram")] = None,
        ) -> dict[str, Any]:
            body = self.view(min_free_bytes, machine)
            if machine is not None and not body["machines"] and \
                    machine not in {m.name for m in self._ctx.topology.machines}:
                raise HTTPException(404, f"no machine {machine!r} in the topology")
            return body

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
        await cancel_and_wait(task, deadline_seconds)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._client.aclose(), timeout=deadline_seconds)

    # --- polling -----------------------------------------------------------------------
    def _build(self) -> httpx.AsyncClient:
        import httpx

        return httpx.AsyncClient(base_url=self.exporter_url, timeout=self.timeout_seconds,
                                 transport=self._transport)

    async def fetch_once(self) -> bool:
        """Read the exporter once; True when it gave a valid answer."""
        try:
            client = await self._client.get()
        except Exception as exc:  # noqa: BLE001 - closed, or no client could be built
            return self._fail(f"no HTTP client: {type(exc).__name__}")
        import httpx  # loaded by get()

        try:
            response = await client.get("/v1/gpus")
            response.raise_for_status()
            # Parsed by pydantic from bytes: bounded nesting, no lone surrogates, no NaN.
            view = ExporterView.model_validate_json(response.content)
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
        self._seq += 1
        return True

    def _fail(self, error: str) -> bool:
        if error != self._error:
            logger.warning("GPU view: {} ({})", error, self.exporter_url)
            self._seq += 1
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
    def _age(self) -> float | None:
        view = self._view
        if self._fetched_at is None or view is None:
            return None
        return round(self._ctx.now() - self._fetched_at + view.age_seconds, 3)

    @property
    def stale_after_seconds(self) -> float:
        return self.poll_seconds * STALE_AFTER_POLLS

    def view(self, min_free_bytes: int | None = None,
             machine: str | None = None) -> dict[str, Any]:
        """This machine's GPUs and groups (top level, as before), then every machine's.

        ``machines``: this one first, then what sync holds of the others (each with its
        age and freshness); ``free_vram``: free bytes per machine, most first.
        """
        exporter, all_gpus, groups = self._local()
        local = _machine_row(self._ctx.machine, local=True, fresh=True,
                             age=exporter["age_seconds"], stale=exporter["stale"],
                             error=self._error, nvml_up=exporter["nvml_up"],
                             nvml_reason=exporter["nvml_reason"], gpus=all_gpus, groups=groups)
        machines = [local] + [self._peer_row(r) for r in self._peer_rows()]
        if machine is not None:
            machines = [m for m in machines if m["machine"] == machine]
        free_vram = sorted(({k: m[k] for k in ("machine", "free_bytes", "total_bytes", "stale",
                                                "age_seconds")} for m in machines),
                           key=lambda m: (m["free_bytes"] is None, -(m["free_bytes"] or 0)))
        for m in machines:
            m["gpus"] = _at_least(m["gpus"], min_free_bytes)
        return {
            "machine": self._ctx.machine,
            "exporter": exporter,
            "gpus": _at_least(all_gpus, min_free_bytes),
            "groups": groups,
            "machines": machines,
            "free_vram": free_vram,
        }

    def _local(self) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
        """This machine's exporter state, GPUs and groups (budgets from the topology)."""
        view = self._view
        age = self._age()
        data_ok = view is not None and view.nvml.up
        used = {g.group: g.used_bytes for g in view.groups} if view is not None and data_ok else {}
        all_gpus = [_gpu_row(g.model_dump()) for g in view.gpus] if view is not None and data_ok else []
        groups = [_group_row(grp.name, grp.service_name, used.get(grp.name) if data_ok else None,
                             grp.gpu_memory_budget_bytes)
                  for grp in self._ctx.topology.groups_on(self._ctx.machine)]
        exporter = {
            "url": self.exporter_url,
            "error": self._error,
            "age_seconds": age,
            "stale": age is None or age > self.stale_after_seconds,
            "nvml_up": view.nvml.up if view is not None else None,
            "nvml_reason": view.nvml.reason if view is not None else None,
        }
        return exporter, all_gpus, groups

    def _peer_rows(self) -> list[dict[str, Any]]:
        # Peers' summaries come from the sync plugin through the full hub, when there is one.
        if isinstance(self._ctx, Hub) and self._ctx.peer_gpus is not None:
            return self._ctx.peer_gpus()
        return []

    def _peer_row(self, row: dict[str, Any]) -> dict[str, Any]:
        s: dict[str, Any] | None = row["summary"]
        age: float | None = row["age_seconds"]
        stale = not row["fresh"] or age is None or age > self.stale_after_seconds
        if s is None:  # a GPU machine whose hub sent no summary (unheard, or no exporter)
            return _machine_row(row["machine"], local=False, fresh=row["fresh"], age=None,
                                stale=True, error="no GPU summary from its hub", nvml_up=None,
                                nvml_reason=None, gpus=[], groups=[])
        return _machine_row(
            row["machine"], local=False, fresh=row["fresh"], age=age, stale=stale,
            error=s["error"], nvml_up=s["nvml_up"], nvml_reason=s["nvml_reason"],
            gpus=[_gpu_row(g) for g in s["gpus"]],
            groups=[_group_row(g["group"], g["service"], g["used_bytes"], g["budget_bytes"])
                    for g in s["groups"]])

    # --- what peers get ------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        """This machine's GPUs and groups as sync sends them (hub.sync.protocol.GpuSummary).

        Strings from the exporter are clipped to the wire's bounds, so one odd answer
        does not stop the summary (sync sends none when it is invalid).
        """
        exporter, gpus, groups = self._local()
        return {
            "machine": self._ctx.machine, "seq": self._seq, "age_seconds": exporter["age_seconds"],
            "error": _clip(self._error, 256), "nvml_up": exporter["nvml_up"],
            "nvml_reason": _clip(exporter["nvml_reason"], 128),
            "gpus": [{**g, "uuid": g["uuid"][:96], "name": g["name"][:96]}
                     for g in gpus[:MAX_SENT_GPUS]],
            "groups": [{k: g[k] for k in ("group", "service", "used_bytes", "budget_bytes")}
                       for g in groups[:MAX_SENT_GROUPS]],
        }


def _clip(text: str | None, n: int) -> str | None:
    return None if text is None else text[:n]


def _at_least(gpus: list[dict[str, Any]], min_free_bytes: int | None) -> list[dict[str, Any]]:
    if min_free_bytes is None:
        return gpus
    return [g for g in gpus if (g["memory_free_bytes"] or 0) >= min_free_bytes]


def _gpu_row(g: dict[str, Any]) -> dict[str, Any]:
    return {k: g.get(k) for k in ("index", "uuid", "name", "memory_total_bytes",
                                  "memory_used_bytes", "memory_reserved_bytes",
                                  "memory_free_bytes", "utilization_ratio")}


def _group_row(group: str, service: str | None, used: int | None, budget: int) -> dict[str, Any]:
    return {
        "group": group, "service": service, "used_bytes": used, "budget_bytes": budget,
        "used_ratio_of_budget": round(used / budget, 4) if used is not None and budget else None,
        "over_budget": (used > budget) if used is not None and budget else None,
    }


def _machine_row(machine: str, *, local: bool, fresh: bool, age: float | None, stale: bool,
                 error: str | None, nvml_up: bool | None, nvml_reason: str | None,
                 gpus: list[dict[str, Any]], groups: list[dict[str, Any]]) -> dict[str, Any]:
    free = [g["memory_free_bytes"] for g in gpus if g["memory_free_bytes"] is not None]
    total = [g["memory_total_bytes"] for g in gpus if g["memory_total_bytes"] is not None]
    return {
        "machine": machine, "local": local, "fresh": fresh, "age_seconds": age, "stale": stale,
        "error": error, "nvml_up": nvml_up, "nvml_reason": nvml_reason,
        "free_bytes": sum(free) if free else None, "total_bytes": sum(total) if total else None,
        "gpus": gpus, "groups": groups,
    }


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__


def gpu_plugin(ctx: HubContext) -> HubPlugin | None:
    """The plugin; ``None`` only when FLEET_GPU_EXPORTER_URL is ``off``.

    Unset, the hub looks for its exporter on this host's FLEET_GPU_EXPORTER_PORT: a hub
    whose exporter is down or absent still answers ``GET /v1/gpus`` for the other
    machines (from sync) and says why its own GPUs are missing.
    """
    url = ctx.settings.gpu_exporter_url or f"http://127.0.0.1:{ctx.settings.gpu_exporter_port}"
    if url.strip().lower() in ("off", "none", "false"):
        return None
    plugin = GpuPlugin(ctx, url)
    if isinstance(ctx, Hub):
        ctx.gpu_summary = plugin.summary  # what sync sends to the peers
    return plugin
