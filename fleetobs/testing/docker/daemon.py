"""Start Debian's dockerd when none answers, and stop it again if we started it."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

from fleetobs.testing.docker.cli import SOCKET, DockerError


def answers(socket_path: Path = SOCKET, timeout: float = 2.0) -> bool:
    """Whether a Docker daemon answers ``GET /_ping`` on the socket."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(str(socket_path))
            s.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            status_line = s.recv(64).split(b"\r\n", 1)[0]
            return status_line.startswith(b"HTTP/1.") and status_line.split()[1:2] == [b"200"]
    except OSError:
        return False


class DockerDaemon:
    """``with DockerDaemon(log) as d:`` a running daemon; ``d.started`` says whether it was us."""

    def __init__(self, log_path: Path, socket_path: Path = SOCKET, start_timeout: float = 60.0,
                 stop_timeout: float = 30.0) -> None:
        self.log_path = log_path
        self.socket_path = socket_path
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.started = False
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> DockerDaemon:
        if answers(self.socket_path):
            return self
        dockerd = shutil.which("dockerd") or "/usr/sbin/dockerd"
        if not os.access(dockerd, os.X_OK):
            raise DockerError("no docker daemon answers and dockerd is not installed "
                              "(apt-get install docker.io)")
        if os.geteuid() != 0:
            raise DockerError("no docker daemon answers and starting dockerd needs root")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            # Its own session: a Ctrl-C of pytest must not kill the daemon mid-cleanup.
            self._proc = subprocess.Popen([dockerd, "--host", f"unix://{self.socket_path}"],
                                          stdout=log, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL, start_new_session=True)
        self.started = True
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise DockerError(f"dockerd exited {self._proc.returncode} at start; "
                                  f"see {self.log_path}: {self._log_tail()}")
            if answers(self.socket_path):
                return self
            time.sleep(0.2)
        self.stop()
        raise DockerError(f"dockerd did not answer within {self.start_timeout:.0f}s; "
                          f"see {self.log_path}: {self._log_tail()}")

    def stop(self) -> None:
        """Stop the daemon we started (SIGTERM, then SIGKILL); idempotent."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(self.stop_timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-1500:]
        except OSError:
            return "(no log)"

    def __enter__(self) -> DockerDaemon:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
