"""The status page at ``/`` and ``/docs``, rendered by a real browser (Debian's Chromium)."""

from __future__ import annotations

import asyncio
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from fleetobs.settings import load_settings
from fleetobs.testing.browser import dump_dom, screenshot
from fleetobs.testing.live_hub import serve_app
from fleetobs.topology.load import load_topology
from hub.app import create_app, plugin_factories
from hub.testing import HubHarness

REPO = Path(__file__).resolve().parents[2]
XSS = "<script>alert(1)</script> redis down"


class Rows(HTMLParser):
    """Text of each ``<tr data-agent=...>``, by table id and agent."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[str] = []
        self.rows: dict[tuple[str, str], dict[str, Any]] = {}
        self._row: dict[str, Any] | None = None
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "script":
            self.scripts += 1
        if tag == "table":
            self.tables.append(a.get("id") or "")
        if tag == "tr" and a.get("data-agent"):
            self._row = {"state": a.get("data-state"), "text": ""}
            self.rows[(self.tables[-1] if self.tables else "", str(a["data-agent"]))] = self._row

    def handle_endtag(self, tag: str) -> None:
        if tag == "tr":
            self._row = None

    def handle_data(self, data: str) -> None:
        if self._row is not None:
            self._row["text"] += data + " "


def not_blank(path: Path) -> None:
    img = Image.open(path).convert("RGB")
    assert img.width >= 800 and img.height >= 600
    colors = img.getcolors(maxcolors=img.width * img.height) or []
    top = max(n for n, _ in colors) / (img.width * img.height)
    assert len(colors) > 50 and top < 0.9, (len(colors), top)


@pytest.mark.slow
@pytest.mark.asyncio
async def test_a_real_browser_shows_a_down_agent_and_its_reason(tmp_path: Path) -> None:
    settings = load_settings({"FLEET_PROBE_ENABLED": "false", "FLEET_GPU_EXPORTER_URL": "off",
                              "FLEET_PEERS": "pc2=http://127.0.0.1:9",  # nobody there
                              "FLEET_GRAFANA_URL": "http://127.0.0.1:3000"})
    app = create_app(load_topology(None), settings, data_dir=tmp_path)
    async with serve_app(app) as url, httpx.AsyncClient(base_url=url) as client:
        r = await client.post("/v1/heartbeats", json=[
            {"agent": "NLUAgent", "interval_seconds": 1},
            {"agent": "MemoryClient", "status": "degraded", "reason": XSS}])
        assert r.status_code == 200
        for _ in range(100):  # silent for more than 3 intervals: down (judged every second)
            if (await client.get("/v1/agents/NLUAgent")).json()["state"] == "down":
                break
            await asyncio.sleep(0.1)
        dom = await asyncio.to_thread(dump_dom, url + "/")
        shot = await asyncio.to_thread(screenshot, url + "/", tmp_path / "page.png")
    parser = Rows()
    parser.feed(dom)
    down = parser.rows[("attention", "NLUAgent")]
    assert down["state"] == "down"
    assert re.search(r"silent for \d+ s \(over 3x its 1 s interval\); it last said ok", down["text"]), down
    degraded = parser.rows[("attention", "MemoryClient")]
    assert degraded["state"] == "degraded" and XSS in degraded["text"]
    assert parser.scripts == 0  # the agent's "<script>" is text, not markup; the page has no JS
    assert 'http-equiv="refresh"' in dom
    # what is wrong comes first: the attention table precedes machines, groups and agents
    assert parser.tables[:2] == ["attention", "peers"]
    assert "never answered" in dom and "pc2" in dom  # the peer link, never reached
    assert 'href="http://127.0.0.1:3000"' in dom and "Prometheus: not configured" in dom
    assert not re.search(r'(src|href)="https?://(?!127\.0\.0\.1)', dom)  # nothing off this host
    not_blank(shot)


def test_the_committed_screenshot_is_not_blank() -> None:
    not_blank(REPO / "docs" / "img" / "status-page.png")


@pytest.mark.slow
@pytest.mark.asyncio
async def test_swagger_ui_renders_offline_from_the_hubs_own_assets(tmp_path: Path) -> None:
    settings = load_settings({"FLEET_PROBE_ENABLED": "false", "FLEET_PEERS": "none",
                              "FLEET_GPU_EXPORTER_URL": "off"})
    app = create_app(load_topology(None), settings, data_dir=tmp_path)
    async with serve_app(app) as url, httpx.AsyncClient(base_url=url) as client:
        html = (await client.get("/docs")).text
        js = await client.get("/docs/assets/swagger-ui-bundle.js")
        missing = await client.get("/docs/assets/../../etc/passwd")
        dom = await asyncio.to_thread(dump_dom, url + "/docs", virtual_time_ms=10_000)
    assert "cdn" not in html and "https://" not in html
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    assert missing.status_code == 404
    # Swagger UI ran (its JS came from the hub) and rendered the operations
    assert 'class="swagger-ui"' in dom and "opblock" in dom and "/v1/heartbeats" in dom


@pytest.mark.asyncio
async def test_healthy_only_when_no_required_agent_is_down_or_missing(tmp_path: Path) -> None:
    settings = load_settings({"FLEET_PEERS": "none"})
    topo = load_topology(None)
    async with HubHarness.build(tmp_path, settings=settings, factories=plugin_factories()) as h:
        ov = (await h.client.get("/v1/status")).json()
        assert not ov["healthy"] and ov["startup_grace"]
        assert ov["attention"][0]["why"].startswith("never heard since the hub started (startup grace")
        beats = [{"agent": a.name, "interval_seconds": 10} for a in topo.agents_on("mainpc")
                 if a.name != "ObservabilityHub"]
        assert (await h.client.post("/v1/heartbeats", json=beats)).status_code == 200
        ov = (await h.client.get("/v1/status")).json()
        assert ov["healthy"] and ov["attention"] == [] and ov["summary"]["counts"] == {"up": 54}
        await h.client.post("/v1/heartbeats", json={"agent": "NLUAgent", "status": "error",
                                                    "reason": "model not loaded"})
        ov = (await h.client.get("/v1/status")).json()
        assert ov["healthy"]  # degraded is attention, not failing
        assert [(a["name"], a["why"]) for a in ov["attention"]] == [("NLUAgent", "model not loaded")]
        h.advance(31)  # everyone else keeps quiet: 3x 10 s later they are down
        ov = (await h.client.get("/v1/status")).json()
        failing = sum(a.required for a in topo.agents_on("mainpc")
                      if a.name != "ObservabilityHub")  # NLUAgent too: it announced 10 s
        assert not ov["healthy"] and ov["summary"]["required_failing"] == failing > 40
        assert ov["attention"][0]["state"] == "down"
        assert re.fullmatch(r"silent for 31 s \(over 3x its 10 s interval\); it last said ok",
                            ov["attention"][0]["why"])
        page = (await h.client.get("/")).text
        assert f"{failing} required agents down or missing" in page
