"""The hub's HTTP clients are built on first use, in a worker thread, once."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from hub.lazy_client import ClientClosedError, LazyClient
from hub.sync.transport import HttpxTransport, TransportError

REPO = Path(__file__).resolve().parents[2]


class Builds:
    """A build function that counts its calls, notes its thread and can be held or fail."""

    def __init__(self, fail: int = 0) -> None:
        self.calls = 0
        self.threads: list[int] = []
        self.release = threading.Event()
        self.release.set()
        self.fail = fail
        self.clients: list[httpx.AsyncClient] = []

    def __call__(self) -> httpx.AsyncClient:
        self.calls += 1
        self.threads.append(threading.get_ident())
        self.release.wait(5)
        if self.fail:
            self.fail -= 1
            raise OSError("no CA bundle")
        client = httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(204)))
        self.clients.append(client)
        return client


def held() -> tuple[Builds, LazyClient]:
    """A lazy client whose build waits in its thread until ``release`` is set."""
    build = Builds()
    build.release.clear()
    return build, LazyClient(build)


@pytest.mark.asyncio
async def test_nothing_is_built_until_the_first_request_then_once_off_the_loop() -> None:
    build = Builds()
    lazy = LazyClient(build)
    assert build.calls == 0 and not lazy.built
    first, second = await asyncio.gather(lazy.get(), lazy.get())
    assert first is second and build.calls == 1 and lazy.built
    assert build.threads == [build.threads[0]] and build.threads[0] != threading.get_ident()
    assert (await first.get("http://x/")).status_code == 204
    await lazy.aclose()
    assert first.is_closed


@pytest.mark.asyncio
async def test_the_loop_keeps_turning_while_the_client_is_built() -> None:
    build, lazy = held()
    getting = asyncio.create_task(lazy.get())
    loop = asyncio.get_running_loop()
    start = loop.time()
    for _ in range(20):
        await asyncio.sleep(0.005)
    # Built on the loop, the held build would have blocked it (up to 5 s) and be done.
    assert loop.time() - start < 2.0 and not getting.done()
    build.release.set()
    assert isinstance(await getting, httpx.AsyncClient)
    await lazy.aclose()


@pytest.mark.asyncio
async def test_a_cancelled_caller_does_not_cancel_the_build_for_the_others() -> None:
    build, lazy = held()
    impatient = asyncio.create_task(lazy.get())
    patient = asyncio.create_task(lazy.get())
    await asyncio.sleep(0.02)
    impatient.cancel()
    build.release.set()
    client = await patient
    assert impatient.cancelled() and build.calls == 1 and not client.is_closed
    await lazy.aclose()


@pytest.mark.asyncio
async def test_a_failed_build_is_raised_and_tried_again_on_the_next_request() -> None:
    build = Builds(fail=1)
    lazy = LazyClient(build)
    with pytest.raises(OSError, match="no CA bundle"):
        await lazy.get()
    client = await lazy.get()
    assert build.calls == 2 and not client.is_closed
    await lazy.aclose()


@pytest.mark.asyncio
async def test_close_is_idempotent_closes_a_client_being_built_and_refuses_later_requests() -> None:
    never = Builds()
    unused = LazyClient(never)
    await unused.aclose()
    await unused.aclose()
    assert never.calls == 0
    with pytest.raises(ClientClosedError):
        await unused.get()

    build, lazy = held()
    getting = asyncio.create_task(lazy.get())
    await asyncio.sleep(0.02)
    closing = asyncio.create_task(lazy.aclose())
    await asyncio.sleep(0.02)
    build.release.set()
    await closing
    with pytest.raises(ClientClosedError):
        await getting
    assert build.calls == 1 and build.clients[0].is_closed


@pytest.mark.asyncio
async def test_a_close_out_of_time_still_closes_the_client_when_its_build_ends() -> None:
    build, lazy = held()
    getting = asyncio.create_task(lazy.get())
    await asyncio.sleep(0.02)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(lazy.aclose(), timeout=0.02)  # a stop deadline that ran out
    build.release.set()
    with pytest.raises(ClientClosedError):
        await getting
    for _ in range(100):
        if build.clients and build.clients[0].is_closed:
            break
        await asyncio.sleep(0.01)
    assert build.calls == 1 and build.clients[0].is_closed


def test_building_the_hub_app_with_peers_loads_no_http_client_stack(tmp_path: Path) -> None:
    # Start-up cost (issue 13): httpx and its transports load on the first push, not before /ready.
    code = f"""
import json, sys
from fleetobs.settings import load_settings
from fleetobs.topology.load import load_topology
from hub.app import create_app
settings = load_settings({{"FLEET_DATA_DIR": {str(tmp_path)!r}, "FLEET_GPU_EXPORTER_URL": "http://127.0.0.1:9"}})
app = create_app(load_topology(), settings)
print(json.dumps({{"plugins": [p.name for p in app.state.plugins],
                  "loaded": sorted(m for m in ("httpx", "httpcore") if m in sys.modules)}}))
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         timeout=60, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert {"sync", "gpu"} <= set(report["plugins"])
    assert report["loaded"] == []


@pytest.mark.asyncio
async def test_the_sync_transport_builds_its_client_on_the_first_push_or_when_warmed_up() -> None:
    lazy = HttpxTransport(1.0)
    with pytest.raises(TransportError) as failed:
        await lazy.post("http://127.0.0.1:9", "/v1/sync/push", b"{}", {})
    assert failed.value.reason == "connect"
    warmed = HttpxTransport(1.0)
    assert not warmed._client.built
    await warmed.warm_up()
    assert warmed._client.built
    for t in (lazy, warmed):
        await t.aclose()
    with pytest.raises(TransportError, match="transport closed"):
        await warmed.post("http://127.0.0.1:9", "/", b"", {})
