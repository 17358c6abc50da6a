"""``/health`` (process alive), ``/ready`` (state loaded, serving), ``/metrics``."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, Response
from prometheus_client import generate_latest

from hub.api.auth import authorize
from hub.api.deps import get_hub
from hub.metrics import render_steps
from hub.service import Hub

router = APIRouter(tags=["health"])

#: What we render is the classic text format (prometheus_client's "latest" says 1.0.0).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@router.get("/health", summary="The process is alive")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/ready", summary="State restored and serving (503 until then)",
            responses={503: {"description": "starting or stopping"}})
async def ready(hub: Annotated[Hub, Depends(get_hub)]) -> JSONResponse:
    if not hub.ready:
        return JSONResponse({"status": "starting"}, status_code=503)
    return JSONResponse({"status": "ready", "machine": hub.machine, "agents": len(hub.registry)})


@router.get("/metrics", summary="Prometheus metrics (text format 0.0.4)",
            dependencies=[Depends(authorize)], response_class=Response)
async def metrics(hub: Annotated[Hub, Depends(get_hub)]) -> Response:
    # Per-agent series are rendered on the loop in steps of ~1 ms, yielding between
    # steps, so a 10k-agent scrape never holds up heartbeats for long (a worker thread
    # would fight the loop for the GIL and hurt heartbeat latency more). The hub's own
    # and the plugins' collectors run in a worker thread: a plugin's collect() may block.
    parts: list[bytes] = []
    for _ in render_steps(hub.registry.snapshot(), hub.machine, hub.now(), parts):
        await asyncio.sleep(0)
    parts.append(await asyncio.to_thread(generate_latest, hub.metrics_registry))
    return Response(b"".join(parts), media_type=CONTENT_TYPE)
