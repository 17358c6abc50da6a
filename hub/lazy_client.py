"""An HTTP client built when first needed, in a worker thread.

The hub's outgoing HTTP (sync pushes, the GPU exporter) goes through httpx. Importing
httpx and its transport stack and building a client (whose TLS context reads the CA
bundle) takes ~0.3 s of CPU, and none of it is needed to answer ``/ready``: at start the
hub has nothing to send yet. So the client is built on the first request, in a thread,
which keeps it out of the start-to-ready time and keeps the event loop turning
(``/health`` still answers) while it loads.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx


class ClientClosedError(RuntimeError):
    """The client was closed (the hub is stopping): no more requests."""


class LazyClient:
    """``await get()``: the client ``build()`` makes (once; concurrent callers share it)."""

    def __init__(self, build: Callable[[], httpx.AsyncClient]) -> None:
        self._build = build
        self._client: httpx.AsyncClient | None = None
        self._building: asyncio.Future[httpx.AsyncClient] | None = None
        self._closed = False
        self._closing: set[asyncio.Task[None]] = set()

    @property
    def built(self) -> bool:
        return self._client is not None

    async def get(self) -> httpx.AsyncClient:
        if self._closed:
            raise ClientClosedError("HTTP client closed")
        if self._client is not None:
            return self._client
        if self._building is None or (self._building.done() and not self._building.cancelled()
                                      and self._building.exception() is not None):
            # Nothing built yet, or a build failed with nobody left waiting: (re)build.
            self._building = asyncio.ensure_future(asyncio.to_thread(self._build))
        building = self._building
        try:
            # Shielded: a caller cancelled mid-build (a timeout) must not cancel it for the others.
            client = await asyncio.shield(building)
        except asyncio.CancelledError:
            raise
        except Exception:
            if self._building is building:
                self._building = None  # the next request tries again
            raise
        if self._closed:  # closed while it was being built: aclose() closes it
            raise ClientClosedError("HTTP client closed")
        self._client = client
        return client

    async def aclose(self) -> None:
        """Close the client if one was built (or is being built); idempotent."""
        self._closed = True
        client, self._client = self._client, None
        building, self._building = self._building, None
        if client is None and building is not None:
            try:
                client = await asyncio.shield(building)
            except asyncio.CancelledError:
                # Out of time (the stop deadline): the thread still finishes; close then.
                building.add_done_callback(self._close_when_built)
                raise
            except Exception:  # noqa: BLE001 - a build that failed left nothing to close
                return
        if client is not None:
            await client.aclose()

    def _close_when_built(self, building: asyncio.Future[httpx.AsyncClient]) -> None:
        if building.cancelled() or building.exception() is not None:
            return
        with contextlib.suppress(RuntimeError):  # the loop is already closed: nothing to do
            task = asyncio.get_running_loop().create_task(building.result().aclose())
            self._closing.add(task)  # a reference, so the task is not collected mid-way
            task.add_done_callback(self._closing.discard)


__all__ = ["ClientClosedError", "LazyClient"]
