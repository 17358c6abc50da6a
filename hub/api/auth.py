"""Bearer-token checks: FLEET_TOKEN guards writes, FLEET_READ_TOKEN (when set) reads.

``/health`` and ``/ready`` stay open (container health checks have no token).
Comparison is constant-time (hmac.compare_digest) so timing reveals nothing.
"""

from __future__ import annotations

import hmac

from fastapi import HTTPException, Request

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def token_ok(header: str | None, expected: str) -> bool:
    scheme, _, given = (header or "").partition(" ")
    if scheme.lower() != "bearer":
        # Still compare, so a missing header costs the same as a wrong token.
        given = ""
    return hmac.compare_digest(given.strip().encode(), expected.encode())


async def authorize(request: Request) -> None:
    """FastAPI dependency for every API route (and every plugin's router)."""
    hub = request.app.state.hub
    settings = hub.settings
    expected = settings.read_token if request.method in READ_METHODS else settings.token
    if not expected:
        return
    if not token_ok(request.headers.get("authorization"), expected):
        hub.counters.rejected["unauthorized"] += 1
        raise HTTPException(status_code=401, detail="missing or wrong bearer token",
                            headers={"WWW-Authenticate": "Bearer"})
