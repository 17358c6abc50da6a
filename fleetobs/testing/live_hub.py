"""Run a real hub app (uvicorn, real sockets) on 127.0.0.1 inside the current event loop.

For end-to-end tests and benchmarks that drive the hub over HTTP: the lifespan runs,
so plugins (probing, ...) start and stop as in production.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import FastAPI


@asynccontextmanager
async def serve_app(app: FastAPI, host: str = "127.0.0.1", **config: Any) -> AsyncIterator[str]:
    """Serve ``app`` on a free port; yields its base URL; stops it (lifespan included).

    ``config``: more ``uvicorn.Config`` arguments (e.g. ``http=`` a protocol class).
    """
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False,
                                           lifespan="on", timeout_graceful_shutdown=2, **config))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        for _ in range(1000):
            if server.started or task.done():
                break
            await asyncio.sleep(0.01)
        if not server.started:
            raise RuntimeError("the hub did not start") from (task.exception() if task.done() else None)
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        sock.close()
