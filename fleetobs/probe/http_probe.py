"""HTTP health probe: ``GET /health`` on an agent's health_check_port + 1.

The real agents answer 200 even when degraded, so the body's ``status`` decides;
a non-2xx status is an error whatever the body says.
"""

from __future__ import annotations

import asyncio
import errno
import time
from collections.abc import Callable

import httpx

from fleetobs.probe.health import decode_health
from fleetobs.probe.result import Outcome, ProbeResult, Protocol

MAX_BODY = 64 * 1024  # a health object is a few hundred bytes; do not buffer junk


def http_endpoint(host: str, port: int, path: str = "/health") -> str:
    h = f"[{host}]" if ":" in host else host
    return f"http://{h}:{port}{path}"


class HttpProber:
    """Probes over HTTP with one pooled client (keep-alive where the agent allows it)."""

    def __init__(self, client: httpx.AsyncClient | None = None, max_connections: int = 64,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self._own_client = client is None
        self._client = client if client is not None else httpx.AsyncClient(
            limits=httpx.Limits(max_connections=max_connections,
                                max_keepalive_connections=max_connections),
            trust_env=False,  # a probe of 127.0.0.1 must never go through a proxy
            follow_redirects=False,
        )
        self._clock = clock
        self._closed = False

    async def probe(
        self, host: str, port: int, timeout: float, path: str = "/health"
    ) -> ProbeResult:
        url = http_endpoint(host, port, path)
        if self._closed:
            return ProbeResult(Outcome.UNREACHABLE, Protocol.HTTP, url,
                               reason="prober is closed")
        started = self._clock()
        try:
            # httpx times each phase separately; the outer bound caps the whole exchange.
            async with asyncio.timeout(timeout):
                async with self._client.stream("GET", url, timeout=timeout) as response:
                    body = await _read_capped(response)
        except (TimeoutError, httpx.TimeoutException):
            return ProbeResult(Outcome.TIMEOUT, Protocol.HTTP, url,
                               reason=f"no reply within {timeout:g} s")
        except httpx.ConnectError as exc:
            if _refused(exc):
                return ProbeResult(Outcome.REFUSED, Protocol.HTTP, url, reason="connection refused")
            return ProbeResult(Outcome.UNREACHABLE, Protocol.HTTP, url, reason=_one_line(exc))
        except httpx.HTTPError as exc:  # protocol errors, dropped connections, too-large bodies
            latency = self._clock() - started
            return ProbeResult(Outcome.INVALID_REPLY, Protocol.HTTP, url, latency, _one_line(exc))
        latency = self._clock() - started
        outcome, reason, health = decode_health(body)
        if not 200 <= response.status_code < 300:
            said = f" (body says {health['status']!r})" if "status" in health else ""
            return ProbeResult(Outcome.ERROR, Protocol.HTTP, url, latency,
                               f"HTTP {response.status_code}{said}", health)
        return ProbeResult(outcome, Protocol.HTTP, url, latency, reason, health)

    async def aclose(self) -> None:
        """Close the client when this prober made it. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._own_client:
            await self._client.aclose()


class BodyTooLarge(httpx.HTTPError):
    pass


async def _read_capped(response: httpx.Response) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > MAX_BODY:
            raise BodyTooLarge(f"body larger than {MAX_BODY} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _refused(exc: BaseException) -> bool:
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, ConnectionRefusedError) or getattr(cur, "errno", 0) == errno.ECONNREFUSED:
            return True
        cur = cur.__cause__ or cur.__context__
    return "refused" in str(exc).lower()


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:200]
