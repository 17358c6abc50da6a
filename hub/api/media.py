"""Writes must say they are JSON: ``Content-Type: application/json`` or 415.

Every body the hub takes is JSON. Insisting on the media type keeps a web page from
posting heartbeats to a tokenless hub (a cross-site form or ``text/plain`` fetch needs
no CORS preflight; ``application/json`` does). A dependency, not middleware, so the
token check (401) still comes first.
"""

from __future__ import annotations

from fastapi import HTTPException, Request

BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


async def require_json(request: Request) -> None:
    if request.method not in BODY_METHODS:
        return
    headers = request.headers
    if headers.get("content-length") in (None, "0") and "transfer-encoding" not in headers:
        return  # no body at all: nothing to mistake for JSON (the route decides)
    given = headers.get("content-type")
    media = (given or "").split(";", 1)[0].strip().lower()
    if media != "application/json":
        shown = "none" if given is None else repr(given[:80])
        raise HTTPException(status_code=415, detail=f"Content-Type must be application/json (got {shown})")
