"""How sync bodies travel: one abstract call, an httpx implementation.

A transport sends a POST and returns the status and body, or raises
:class:`TransportError` with a bounded ``reason`` (a metric label). The in-memory
fake with fault injection lives in :mod:`hub.sync.testing`. The httpx client is built
on the first push (hub.lazy_client), not at start.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from hub.lazy_client import ClientClosedError, LazyClient

if TYPE_CHECKING:
    import httpx


class TransportError(Exception):
    """The request may or may not have arrived; no reply came back."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: bytes


class Transport(Protocol):
    async def post(self, url: str, path: str, body: bytes,
                   headers: Mapping[str, str]) -> Reply: ...

    async def aclose(self) -> None: ...


class HttpxTransport:
    """HTTP/1.1 with keep-alive, one pooled client for all peers."""

    def __init__(self, timeout_seconds: float = 5.0, max_reply_bytes: int = 1024 * 1024) -> None:
        self.max_reply_bytes = max_reply_bytes
        self.timeout_seconds = timeout_seconds
        self._client = LazyClient(self._build)

    def _build(self) -> httpx.AsyncClient:
        import httpx

        t = self.timeout_seconds
        return httpx.AsyncClient(timeout=httpx.Timeout(t, connect=min(t, 2.0)),
                                 limits=httpx.Limits(max_connections=32, max_keepalive_connections=8),
                                 follow_redirects=False, trust_env=False)

    async def post(self, url: str, path: str, body: bytes,
                   headers: Mapping[str, str]) -> Reply:
        try:
            client = await self._client.get()
        except ClientClosedError:
            raise TransportError("other", "transport closed") from None
        except Exception as exc:  # noqa: BLE001 - no client, no push: counted, retried
            raise TransportError("other", f"no HTTP client: {type(exc).__name__}") from None
        import httpx  # loaded by get()

        try:
            async with client.stream(
                    "POST", url.rstrip("/") + path, content=body,
                    headers={"content-type": "application/json", **headers}) as resp:
                chunks: list[bytes] = []
                size = 0
                async for chunk in resp.aiter_bytes():
                    size += len(chunk)
                    if size > self.max_reply_bytes:
                        raise TransportError("bad_reply", "reply too large")
                    chunks.append(chunk)
                return Reply(resp.status_code, b"".join(chunks))
        except httpx.TimeoutException as exc:
            raise TransportError("timeout", type(exc).__name__) from None
        except httpx.ConnectError as exc:
            raise TransportError("connect", str(exc)[:200]) from None
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
            raise TransportError("reset", type(exc).__name__) from None
        except httpx.HTTPError as exc:
            raise TransportError("other", type(exc).__name__) from None

    async def warm_up(self) -> None:
        """Build the client now rather than on the first push (benchmarks time pushes)."""
        await self._client.get()

    async def aclose(self) -> None:
        await self._client.aclose()
