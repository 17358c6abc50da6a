"""``fleetobs dashboards preview``: PNGs drawn from a live Prometheus, and its bad input."""

from __future__ import annotations

import socket
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fleetobs.cli.main import main
from fleetobs.generate import links
from fleetobs.generate.dashboards.draw import PALETTE
from fleetobs.generate.dashboards.preview import INSTALL_HINT, preview


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["dashboards", "preview", *args])
    out, err = capsys.readouterr()
    return code, out, err


def image(path: Path) -> Any:
    import matplotlib.image

    return matplotlib.image.imread(path)[:, :, :3]  # RGB floats 0..1


def rgb(hex_colour: str) -> np.ndarray:
    return np.array([int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5)])


@pytest.mark.binaries
@pytest.mark.slow
def test_preview_draws_every_panel_of_a_dashboard_from_live_data(live: Any, fleet: Any, tmp_path: Path) -> None:
    (pic,) = preview(fleet, live.prom.url, tmp_path, uids=[links.GPU], since_seconds=60)
    assert pic.path == tmp_path / "fleet-gpu.png"
    px = image(pic.path)
    assert px.shape[1] == 1600 and px.shape[0] > 2000  # Grafana's grid: 24 columns, 30 px a row
    assert px.std() > 0.02  # not blank (a blank picture has 0; the dark theme keeps it low)
    assert (np.abs(px - rgb("#111217")).sum(axis=2) > 0.05).mean() > 0.5  # mostly panels, not background
    drawn = {r.title: r for r in pic.panels}
    assert drawn["VRAM per compose service"].lines >= 4  # every compose service on both machines, stacked
    ts = drawn["Temperature"]
    assert (ts.kind, ts.lines) == ("timeseries", 2)
    left, top, right, bottom = ts.box
    crop = px[top:bottom, left:right]
    # the lines really are in that panel's box (the last one drawn is on top: both GPUs are at 61 °C)
    assert ts.colours == list(PALETTE[:2])
    assert (np.abs(crop - rgb(ts.colours[-1])).sum(axis=2) < 0.15).sum() > 50
    assert drawn["Budgets over installed VRAM"].colours[0] == "#f2495c"  # MainPC's 258%: red
    assert drawn["Uncorrected ECC errors"].lines == 0  # "No data", as Grafana would say


@pytest.mark.binaries
@pytest.mark.slow
def test_the_command_writes_the_pngs_and_says_what_it_drew(live: Any, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "--prometheus", live.prom.url, "-o", str(tmp_path), "--since", "1m",
                         "-d", links.OVERVIEW, "-d", links.AGENT, "--var", "machine=pc2",
                         "--var", "group=vision_dream_gpu", "--var", "agent=DreamingModeAgent")
    assert (code, err) == (0, "")
    for uid in (links.OVERVIEW, links.AGENT):
        path = tmp_path / f"{uid}.png"
        assert f"{path}: " in out
        assert image(path).std() > 0.02
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fleet-agent.png", "fleet-overview.png"]


@pytest.fixture
def not_prometheus() -> Iterator[str]:
    class Html(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"<html>hello</html>"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Html)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(5)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.mark.parametrize(("args", "message"), [
    (["--prometheus", "localhost:9090"], "--prometheus 'localhost:9090': not an http(s) URL"),
    (["--prometheus", "ftp://x"], "not an http(s) URL"),
    (["--dashboard", "nope"], "--dashboard nope: unknown dashboard (choose from fleet-overview"),
    (["--since", "an hour"], "'an hour': not a duration"),
    (["--var", "machine"], "--var 'machine': expected NAME=VALUE"),
])
def test_bad_input_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                          args: list[str], message: str) -> None:
    code, _, err = run(capsys, "-o", str(tmp_path), *args)
    assert (code, err.count("\n")) == (2, 1)
    assert message in err
    assert list(tmp_path.iterdir()) == []


def test_an_unreachable_prometheus_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    code, _, err = run(capsys, "--prometheus", url, "-o", str(tmp_path))
    assert (code, err.count("\n")) == (2, 1)
    assert f"cannot reach Prometheus at {url}" in err


def test_something_that_is_not_prometheus_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                                 not_prometheus: str) -> None:
    code, _, err = run(capsys, "--prometheus", not_prometheus, "-o", str(tmp_path))
    assert (code, err.count("\n")) == (2, 1)
    assert "not a Prometheus API answer" in err


def test_without_matplotlib_it_says_how_to_install_it(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib raises ImportError
    code, _, err = run(capsys, "-o", str(tmp_path))
    assert (code, err.count("\n")) == (2, 1)
    assert INSTALL_HINT in err and "pip install 'fleetobs[preview]'" in err
