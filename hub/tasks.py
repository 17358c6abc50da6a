"""Background task shutdown, the one way every hub loop ends."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any


async def cancel_and_wait(task: asyncio.Task[Any] | None, deadline_seconds: float) -> None:
    """Cancel ``task`` and wait for it at most ``deadline_seconds``; never raises.

    Shutdown must not hang on a loop that ignores cancellation, nor fail because the
    loop died earlier: either way the hub goes on stopping.
    """
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await asyncio.wait_for(task, timeout=deadline_seconds)
