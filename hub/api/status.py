"""``GET /`` (the status page) and ``GET /v1/status`` (the same, as JSON).

Both come from :func:`hub.overview.overview`; ``fleetobs status`` reads the JSON.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse

from hub.api.deps import get_hub
from hub.api.models import Problem
from hub.overview import overview
from hub.service import Hub
from hub.status_page import render

router = APIRouter(tags=["status"])


def _overview(request: Request, hub: Hub) -> dict[str, Any]:
    return overview(hub, getattr(request.app.state, "plugins", ()))


@router.get("/", response_class=HTMLResponse, responses={401: {"model": Problem}},
            summary="The status page: both machines, groups, agents by state, what is wrong first")
async def status_page(request: Request, hub: Annotated[Hub, Depends(get_hub)]) -> HTMLResponse:
    return HTMLResponse(render(_overview(request, hub)),
                        headers={"Cache-Control": "no-store"})


@router.get("/v1/status", responses={401: {"model": Problem}},
            summary="The fleet at a glance: healthy, machines, groups, peers, what needs attention")
async def status(request: Request, hub: Annotated[Hub, Depends(get_hub)]) -> JSONResponse:
    return JSONResponse(_overview(request, hub))
