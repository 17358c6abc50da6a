"""How routes reach the hub: ``app.state.hub`` (set by hub.app.create_app).

Async on purpose: FastAPI runs sync dependencies in a worker thread (~100 us each).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import Request

if TYPE_CHECKING:
    from hub.service import Hub


async def get_hub(request: Request) -> Hub:
    hub: Hub = request.app.state.hub
    return hub
