"""``GET /docs`` and ``/openapi.json``: Swagger UI served by the hub itself, assets
included (no CDN), behind the same read guard as the API.

The fleet's machines sit on a LAN, often without internet: FastAPI's default page
loads Swagger UI from a CDN and stays blank there. The assets come from the
``swagger-ui-bundle-v2`` package (Swagger UI 5, which reads OpenAPI 3.1).
With ``FLEET_READ_TOKEN`` set, the schema of a closed API must not be open either, so
the app turns FastAPI's own routes off and mounts this router with the read dependency
(hub.api.auth.authorize).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse

ASSETS_PATH = "/docs/assets"
#: The only files served (no directory behind a path parameter).
ASSETS = {"swagger-ui-bundle.js": "text/javascript", "swagger-ui.css": "text/css",
          "favicon-32x32.png": "image/png"}


def assets_dir() -> Path:
    from swagger_ui_bundle import swagger_ui_path

    return Path(str(swagger_ui_path))


def docs_router(title: str, openapi_url: str = "/openapi.json") -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get(openapi_url)
    async def openapi(request: Request) -> JSONResponse:
        return JSONResponse(request.app.openapi())

    @router.get("/docs")
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url, title=f"{title} - API docs",
            swagger_js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_PATH}/favicon-32x32.png")

    @router.get(ASSETS_PATH + "/{name}")
    async def asset(name: str) -> FileResponse:
        media = ASSETS.get(name)
        if media is None:
            raise HTTPException(404, f"no asset {name!r}")
        return FileResponse(assets_dir() / name, media_type=media,
                            headers={"Cache-Control": "public, max-age=86400"})

    return router
