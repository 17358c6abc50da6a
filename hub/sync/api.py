"""Sync's HTTP routes: the two peer endpoints and the global fleet summary.

``POST /v1/sync/push`` and ``POST /v1/sync/reconcile`` read the raw body (bounded:
413 past ``max_body_bytes`` whether announced or streamed) and hand it to
:meth:`hub.sync.server.SyncServer.handle`, which checks FLEET_TOKEN (401), validates
(422) and merges; junk never causes a 5xx. ``GET /v1/fleet`` is the global view.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from hub.sync.engine import SyncEngine
from hub.sync.protocol import (
    PushReply,
    PushRequest,
    ReconcileReply,
    ReconcileRequest,
    SyncError,
)
from hub.sync.server import PUSH_PATH, RECONCILE_PATH


class MachineSummary(BaseModel):
    machine: str
    local: bool = Field(description="this hub's own machine")
    fresh: bool = Field(description="heard from within stale_after (always true for local)")
    data_age_seconds: float | None = Field(description="seconds since that hub was last heard")
    epoch: int | None
    synced: bool = Field(description="a full reconciliation of its current run completed")
    agents: int
    counts: dict[str, int] = Field(description="agents by state; unknown while not fresh")


class PeerSummary(BaseModel):
    url: str
    peer: str = Field(description="the fleet_peer_up label: the peer's machine")
    machine: str = Field(description="the peer's machine, from configuration (known before it answers)")
    answered: bool = Field(description="it answered at least once since this hub started")
    up: bool
    last_error: str | None
    last_success_age_seconds: float | None


class FleetSummary(BaseModel):
    machine: str
    epoch: int
    machines: list[MachineSummary]
    peers: list[PeerSummary]


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    """The schema with every ``$ref`` to ``$defs`` replaced by its target (no cycles here)."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inline(defs[ref.removeprefix("#/$defs/")], defs)
        return {k: _inline(v, defs) for k, v in node.items() if k != "$defs"}
    if isinstance(node, list):
        return [_inline(v, defs) for v in node]
    return node


def _body_schema(model: type[BaseModel]) -> dict[str, Any]:
    # The body is read raw (size first), so FastAPI does not know the model: document it
    # self-contained (a $ref into components would dangle).
    schema = model.model_json_schema()
    return {"requestBody": {"required": True, "content": {
        "application/json": {"schema": _inline(schema, schema.get("$defs", {}))}}}}


async def _read(request: Request, limit: int) -> bytes | None:
    """The body, or None once it grows past ``limit`` (whatever Content-Length said)."""
    announced = request.headers.get("content-length", "")
    if announced.isdigit() and int(announced) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def sync_router(engine: SyncEngine, local_counts: Callable[[], Counter[str]],
                topology_counts: Callable[[], dict[str, int]]) -> APIRouter:
    router = APIRouter(tags=["sync"])
    server = engine.server
    errors: dict[int | str, dict[str, Any]] = {
        code: {"model": SyncError} for code in (401, 409, 413, 415, 422)}

    async def answer(request: Request, path: str) -> Response:
        body = await _read(request, server.max_body_bytes)
        if body is None:
            status, data = server._error(413, "too_large",
                                         f"body larger than {server.max_body_bytes} bytes")
        else:
            status, data = server.handle(path, body, request.headers.get("authorization"))
        return Response(data, status_code=status, media_type="application/json")

    @router.post(PUSH_PATH, response_model=PushReply, responses=errors,
                 openapi_extra=_body_schema(PushRequest),
                 summary="A peer hub pushes records it owns (delta, or buckets of a reconciliation)")
    async def push(request: Request) -> Response:
        return await answer(request, PUSH_PATH)

    @router.post(RECONCILE_PATH, response_model=ReconcileReply, responses=errors,
                 openapi_extra=_body_schema(ReconcileRequest),
                 summary="A peer hub sends bucket digests of its records; the reply lists those that differ")
    async def reconcile(request: Request) -> Response:
        return await answer(request, RECONCILE_PATH)

    @router.get("/v1/fleet", response_model=FleetSummary,
                summary="The whole fleet per machine: counts by state, each peer's freshness")
    async def fleet() -> JSONResponse:
        return JSONResponse(engine.summary(local_counts(), topology_counts()))

    return router
