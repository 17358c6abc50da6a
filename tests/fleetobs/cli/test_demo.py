"""``fleetobs demo`` as a user runs it: a real process tree, stopped by a real Ctrl-C (SIGINT)."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from fleetobs.demo.plan import FAILURES
from fleetobs.testing.binaries import require_binary

pytestmark = [pytest.mark.slow, pytest.mark.binaries]


def listening(pids: list[int]) -> set[tuple[str, int]]:
    """(address, port) of every TCP socket the processes listen on (from /proc)."""
    inodes: set[str] = set()
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    target = os.readlink(f"/proc/{pid}/fd/{fd}")
                    if target.startswith("socket:["):
                        inodes.add(target[8:-1])
    found: set[tuple[str, int]] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as f:
            for line in f.readlines()[1:]:
                cols = line.split()
                if cols[3] != "0A" or cols[9] not in inodes:  # 0A: LISTEN
                    continue
                addr, port = cols[1].split(":")
                raw = bytes.fromhex(addr)
                ip = (ipaddress.IPv4Address(raw[::-1]) if len(raw) == 4
                      else ipaddress.IPv6Address(b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))))
                found.add((str(ip), int(port, 16)))
    return found


def eventually(check: Callable[[], Any], timeout: float, what: str) -> Any:
    end = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < end:
        with contextlib.suppress(httpx.HTTPError, KeyError, ValueError):
            last = check()
            if last:
                return last
        time.sleep(0.5)
    raise AssertionError(f"{what}: not within {timeout} s (last: {last!r})")


@contextlib.contextmanager
def demo(work: Path) -> Iterator[tuple[subprocess.Popen[str], list[str]]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLEET_")}
    proc = subprocess.Popen([sys.executable, "-m", "fleetobs.cli.main", "demo", "--ephemeral",
                             "--data-dir", str(work), "--refresh", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    lines: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        yield proc, lines
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        manifest = work / "demo.json"
        if manifest.exists():  # never leave a child behind, whatever failed
            for p in json.loads(manifest.read_text())["processes"]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p["pid"], signal.SIGKILL)
        reader.join(5)
        if proc.stdout is not None:
            proc.stdout.close()


def test_demo_runs_a_living_two_machine_fleet_on_loopback_and_ctrl_c_stops_it(tmp_path: Path) -> None:
    require_binary("prometheus")
    require_binary("prometheus-alertmanager", "alertmanager")
    work = tmp_path / "demo"
    with demo(work) as (proc, lines):
        ready = eventually(lambda: next((x for x in lines if x.startswith("fleetobs demo: ready:")), None),
                           150, "the ready line")
        main_url, pc2_url = ready.split("ready:")[1].split()
        out = "".join(lines)
        assert "SIMULATED" in out
        manifest = json.loads((work / "demo.json").read_text())
        procs = {p["name"]: p for p in manifest["processes"]}
        assert set(procs) == {"simulate-mainpc", "simulate-pc2", "gpu-mainpc", "gpu-pc2", "hub-mainpc", "hub-pc2",
                              *(f"{what}-{m}" for what in ("prometheus", "alertmanager") for m in ("mainpc", "pc2"))}
        assert manifest["skipped"] == []
        pids = [p["pid"] for p in manifest["processes"]]

        def status(url: str) -> dict[str, Any]:
            body: dict[str, Any] = httpx.get(url + "/v1/status", timeout=5).json()
            return body

        def living() -> dict[str, Any] | None:
            ov = status(main_url)
            by = {a["name"]: a for a in ov["attention"]}
            pc2 = next(m for m in ov["machines"] if m["machine"] == "pc2")
            used = [g for g in ov["groups"] if g["gpu_used_bytes"]]
            ok = (pc2["fresh"] and "NLUAgent" in by and "DreamWorldAgent" in by
                  and "FaceRecognitionAgent" in by and ov["peers"][0]["up"]
                  and {g["machine"] for g in used} == {"mainpc", "pc2"})
            return ov if ok else None

        ov = eventually(living, 90, "both hubs syncing, failures shown, GPUs read")
        by = {a["name"]: a for a in ov["attention"]}
        assert by["NLUAgent"]["why"] == "health_checks.ready_signal=false"
        assert "refused" in by["FaceRecognitionAgent"]["why"]  # the crashed one: nothing listens
        assert by["DreamWorldAgent"]["machine"] == "pc2"  # learned from pc2's hub by sync
        assert ov["banner"].startswith("SIMULATED")
        assert not ov["healthy"]
        page = httpx.get(main_url + "/", timeout=5).text
        assert "SIMULATED fleet" in page and "FaceRecognitionAgent" in page
        other = status(pc2_url)
        assert next(m for m in other["machines"] if m["machine"] == "mainpc")["fresh"]

        # Prometheus on fleetobs build's configuration: every target scraped, the crashed
        # agent paged once (the two Alertmanagers are a cluster), by the demo's webhook.
        prom = procs["prometheus-mainpc"]["url"].rstrip("/")

        def scraped() -> list[dict[str, Any]] | None:
            targets: list[dict[str, Any]] = httpx.get(prom + "/api/v1/targets", timeout=5).json()["data"][
                "activeTargets"]
            jobs = {t["labels"]["job"] for t in targets}
            down = {t["labels"].get("agent", t["labels"]["job"]) for t in targets if t["health"] != "up"}
            ok = {"fleet-hub", "fleet-hub-peer", "fleet-gpu-exporter", "fleet-agents"} <= jobs and \
                down <= set(FAILURES["mainpc"]) and "FaceRecognitionAgent" in down  # the crashed one
            return targets if ok else None

        targets = eventually(scraped, 60, "every target of mainpc's Prometheus up but the failing agents")
        assert sum(t["labels"]["job"] == "fleet-agents" and t["health"] == "up" for t in targets) > 10
        log = Path(manifest["notifications"]["log"])

        def paged() -> list[dict[str, Any]] | None:
            sent = [json.loads(x) for x in log.read_text().splitlines()] if log.exists() else []
            pages = [n for n in sent if n["receiver"] == "page" and n["status"] == "firing"
                     and any(a["labels"].get("agent") == "FaceRecognitionAgent" for a in n["alerts"])]
            return pages or None

        pages = eventually(paged, 150, "a page for the crashed FaceRecognitionAgent")
        time.sleep(2)  # a second node's copy would arrive within the gossip interval
        assert len(paged() or []) == 1, paged()
        assert pages[0]["commonLabels"]["machine"] == "mainpc"
        assert "notifications: " in "".join(lines)  # the live view shows what was sent

        sockets = listening(pids)
        assert sockets, "no listening sockets found"
        assert {ip for ip, _ in sockets} == {"127.0.0.1", "127.0.0.2"}, sorted(sockets)

        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
        proc.wait(timeout=15)
        took = time.monotonic() - t0
    assert proc.returncode == 0, "".join(lines)[-3000:]
    assert took <= 3.0, took
    reported = float("".join(lines).rsplit("stopped 10 processes in ", 1)[1].split(" s")[0])
    assert reported <= 2.0
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
