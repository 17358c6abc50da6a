"""``/openapi.json`` and ``/docs`` behind the same read guard as the API.

FastAPI serves both unguarded; with ``FLEET_READ_TOKEN`` set, the schema of a closed
API must not be open either, so the app turns FastAPI's own routes off and mounts
these with the read dependency (hub.api.auth.authorize).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse

router = APIRouter(include_in_schema=False)


@router.get("/openapi.json")
async def openapi(request: Request) -> JSONResponse:
    return JSONResponse(request.app.openapi())


@router.get("/docs")
async def docs(request: Request) -> HTMLResponse:
    return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{request.app.title} - docs")
