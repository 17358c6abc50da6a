"""One POST to Loki's push API, and what its answer means for the batch.

Loki's contract (docs: "Push log entries to Loki"): 204 on success; 400 when some
entries were invalid (the valid ones *were* stored, so resending would only
duplicate them); 413 when the request is too large; 429 when rate limited; 5xx
when the write path is unhealthy. Only 429, 5xx and transport errors are worth
retrying; other 4xx mean the batch will never be accepted as it is.
"""

from __future__ import annotations

import email.utils
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx

PUSH_PATH = "/loki/api/v1/push"


class Outcome(StrEnum):
    SENT = "sent"
    RETRY = "retry"  # 429, 5xx, connection error, timeout
    REJECTED = "rejected"  # 400 and other 4xx: never retried
    TOO_LARGE = "too_large"  # 413: split and resend


@dataclass(frozen=True, slots=True)
class PushResult:
    outcome: Outcome
    status: int | None = None
    retry_after: float | None = None  # seconds, from the Retry-After header
    reason: str = ""  # why a retry: rate_limited | server_error | connection | timeout
    detail: str = ""  # Loki's error text (first 500 characters), for the summary line


def push_url(base: str) -> str:
    """FLEET_LOKI_URL may be Loki's base URL or the full push URL."""
    base = base.rstrip("/")
    return base if base.endswith(PUSH_PATH) else base + PUSH_PATH


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


class LokiClient:
    """Posts gzip JSON bodies to Loki. Not thread-safe: the sender thread owns it."""

    def __init__(self, url: str, *, tenant: str | None = None,
                 basic_auth: tuple[str, str] | None = None, bearer_token: str | None = None,
                 timeout_seconds: float = 10.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        import httpx  # here, not at import: a hub without Loki never loads it

        headers = {"Content-Type": "application/json", "Content-Encoding": "gzip",
                   "User-Agent": "fleetobs-log-shipper"}
        if tenant:
            headers["X-Scope-OrgID"] = tenant
        if bearer_token:
            headers["Authorization"] = f"Bearer {bearer_token}"
        self.url = push_url(url)
        parsed = httpx.URL(self.url)
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise ValueError(f"FLEET_LOKI_URL={url!r}: want http(s)://host[:port][/loki/api/v1/push]")
        self.timeout_seconds = timeout_seconds
        self._client = httpx.Client(headers=headers, auth=basic_auth, transport=transport,
                                    timeout=timeout_seconds, follow_redirects=False)

    def push(self, body: bytes, timeout_seconds: float | None = None) -> PushResult:
        import httpx

        t = self.timeout_seconds if timeout_seconds is None else max(0.01, timeout_seconds)
        try:
            r = self._client.post(self.url, content=body, timeout=t)
        except httpx.TimeoutException as exc:
            return PushResult(Outcome.RETRY, reason="timeout", detail=type(exc).__name__)
        except httpx.HTTPError as exc:  # transport trouble, a garbled answer: try again later
            return PushResult(Outcome.RETRY, reason="connection",
                              detail=f"{type(exc).__name__}: {exc}"[:500])
        code = r.status_code
        if 200 <= code < 300:
            return PushResult(Outcome.SENT, code)
        detail = r.text[:500].strip()
        if code == 429 or code >= 500:
            return PushResult(Outcome.RETRY, code,
                              parse_retry_after(r.headers.get("Retry-After"), time.time()),
                              "rate_limited" if code == 429 else "server_error", detail)
        if code == 413:
            return PushResult(Outcome.TOO_LARGE, code, detail=detail)
        return PushResult(Outcome.REJECTED, code, detail=detail)

    def close(self) -> None:
        self._client.close()
