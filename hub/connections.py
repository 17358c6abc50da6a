"""Idle and slow HTTP connections are closed after a timeout (uvicorn has none for them).

uvicorn times out a kept-alive connection only after a response, and any byte received
re-arms that timer; a connection that never sends a request, or sends its head one byte
at a time (slowloris), holds a file descriptor forever. With the common soft limit of
1,024 open files, 1,100 such connections made ``/health`` fail.

:func:`guarded_protocol` wraps uvicorn's HTTP protocol class (httptools or h11, the one
``auto`` would pick) so that a connection must deliver a complete request head within
``idle_timeout`` seconds of opening or of its previous response, whatever it trickles
meanwhile, or it is closed (counted, reason ``head``). The body has its own deadline in
the ASGI middleware (hub.api.middleware.BodyLimit: 408, reason ``body``).

It relies on two uvicorn internals both protocols share (checked by tests/hub/
test_connections.py): ``on_response_complete()`` and ``cycle`` (the current request,
replaced when a new head is parsed).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any


def default_protocol() -> type[asyncio.Protocol]:
    """What uvicorn's ``http="auto"`` uses: httptools when installed, else h11."""
    from uvicorn.protocols.http.auto import AutoHTTPProtocol

    return AutoHTTPProtocol


def guarded_protocol(idle_timeout: float, timeouts: Counter[str],
                     base: type[asyncio.Protocol] | None = None) -> type[asyncio.Protocol]:
    """``base`` (default: uvicorn's choice) with the request-head deadline."""
    parent: Any = base or default_protocol()

    class Guarded(parent):  # type: ignore[misc]
        _head_timer: asyncio.TimerHandle | None = None
        _armed_for: Any = None

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)
            self._arm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            self._disarm()
            self._armed_for = self.cycle  # a new head replaces the cycle
            self._head_timer = asyncio.get_running_loop().call_later(idle_timeout, self._expired)

        def _disarm(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _expired(self) -> None:
            self._head_timer = None
            cycle: Any = self.cycle
            if cycle is not self._armed_for or self.transport.is_closing():
                return  # a request arrived in time (its response re-arms the timer)
            if (cycle is not None and not cycle.response_complete) or getattr(self, "pipeline", None):
                return  # still answering (pipelined requests): not idle
            timeouts["head"] += 1
            self.transport.close()

    Guarded.__name__ = Guarded.__qualname__ = f"Guarded{parent.__name__}"
    return Guarded
