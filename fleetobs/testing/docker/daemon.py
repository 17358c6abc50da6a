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


def _is_dockerd(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return bool(cmdline) and Path(cmdline[0].decode(errors="replace")).name == "dockerd"


class DockerDaemon:
    """``with DockerDaemon(log) as d:`` a running daemon; ``d.started`` says whether it was us.

    ``marker``: a file naming the PID of a dockerd that fleetobs started. Whoever starts the
    daemon writes it; a later :class:`DockerDaemon` with the same marker adopts that daemon
    and stops it (CI: the background image build starts it, the test session stops it)."""

    def __init__(self, log_path: Path, socket_path: Path = SOCKET, start_timeout: float = 60.0,
                 stop_timeout: float = 30.0, marker: Path | None = None) -> None:
        self.log_path = log_path
        self.socket_path = socket_path
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.marker = marker
        self.started = False
        self._proc: subprocess.Popen[bytes] | None = None
        self._adopted: int | None = None

    def _adopt(self) -> bool:
        if self.marker is None:
            return False
        try:
            pid = int(self.marker.read_text().strip())
        except (OSError, ValueError):
            return False
        if not _is_dockerd(pid):
            self.marker.unlink(missing_ok=True)
            return False
        self._adopted, self.started = pid, True
        return True

    def start(self) -> DockerDaemon:
        if answers(self.socket_path):
            self._adopt()
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
        if self.marker is not None:
            self.marker.parent.mkdir(parents=True, exist_ok=True)
            self.marker.write_text(f"{self._proc.pid}\n")
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

    def detach(self) -> None:
        """Leave the daemon running for whoever adopts it through the marker."""
        self._proc, self._adopted = None, None

    def stop(self) -> None:
        """Stop the daemon we started or adopted (SIGTERM, then SIGKILL); idempotent."""
        proc, self._proc = self._proc, None
        adopted, self._adopted = self._adopted, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        elif adopted is not None and _is_dockerd(adopted):
            os.kill(adopted, signal.SIGTERM)
            deadline = time.monotonic() + self.stop_timeout
            while _is_dockerd(adopted) and time.monotonic() < deadline:
                time.sleep(0.2)
            if _is_dockerd(adopted):
                os.kill(adopted, signal.SIGKILL)
        if (proc is not None or adopted is not None) and self.marker is not None:
            self.marker.unlink(missing_ok=True)

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
