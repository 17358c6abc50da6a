"""``fleetobs gpu-exporter``: bad input is one line and exit 2; the real process serves
without NVML and stops on SIGTERM."""

from __future__ import annotations

import contextlib
import ctypes.util
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from fleetobs.cli.main import main


@pytest.mark.parametrize(("args", "message"), [
    (["--machine", "nope"], "--machine/MACHINE_TYPE: unknown machine 'nope' (known: mainpc, pc2)"),
    (["--proc-root", "/no/such/proc"], "--proc-root/FLEET_GPU_PROC_ROOT: /no/such/proc is not a"),
    (["--interval", "0"], "Invalid value for '--interval'"),
    (["--port", "70000"], "Invalid value for '--port'"),
])
def test_bad_input_is_one_line_and_exit_2(args: list[str], message: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gpu-exporter", *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


def test_a_bad_environment_variable_is_named(monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("FLEET_GPU_INTERVAL", "soon")
    assert main(["gpu-exporter"]) == 2
    assert "FLEET_GPU_INTERVAL='soon'" in capsys.readouterr().err


def test_a_taken_port_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = main(["gpu-exporter", "--port", str(port), "--proc-root", str(tmp_path)])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"fleetobs: error: --host/--port: cannot listen on 127.0.0.1:{port}")


@pytest.mark.slow
@pytest.mark.skipif(ctypes.util.find_library("nvidia-ml") is not None,
                    reason="this machine has a real NVML")
def test_the_process_serves_without_nvml_and_stops_on_sigterm(tmp_path: Path) -> None:
    env = {**os.environ, "MACHINE_TYPE": "pc2", "FLEET_GPU_INTERVAL": "0.2"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "fleetobs.cli.main", "gpu-exporter", "--port", "0",
         "--proc-root", str(tmp_path), "--docker-socket", str(tmp_path / "none.sock")],
        stderr=subprocess.PIPE, text=True, env=env)
    try:
        url = _wait_for_url(proc)
        body = ""
        for _ in range(50):
            body = httpx.get(url + "/metrics").text
            if "nvml_down_reason" in body:
                break
            time.sleep(0.1)
        assert 'fleet_gpu_exporter_nvml_up{machine="pc2"} 0.0' in body
        assert 'reason="library_not_found"' in body
        assert 'fleet_gpu_exporter_docker_up{machine="pc2"} 0.0' in body
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        assert proc.stderr is not None
        proc.stderr.close()


def _wait_for_url(proc: subprocess.Popen[str]) -> str:
    # A reader thread, not select(): select() on the fd misses lines already sitting in
    # the text wrapper's buffer (two lines arriving in one read), which made this flaky.
    assert proc.stderr is not None
    stderr = proc.stderr
    lines: queue.Queue[str] = queue.Queue()
    def pump() -> None:
        with contextlib.suppress(ValueError, OSError):  # the test closes the pipe at the end
            for line in stderr:
                lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    end = time.monotonic() + 20
    while time.monotonic() < end:
        try:
            line = lines.get(timeout=0.2)
        except queue.Empty:
            assert proc.poll() is None, "exporter exited before serving"
            continue
        m = re.search(r"on (http://127\.0\.0\.1:\d+)", line)
        if m:
            return m.group(1)
    raise AssertionError("exporter did not report its URL")
