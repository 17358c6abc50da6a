"""The Docker and docker-compose command lines, run with timeouts and clear errors."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

#: Debian's docker.io CLI first: it matches Debian's dockerd, and a newer static CLI
#: earlier on PATH (/usr/local/bin/docker here) defaults to BuildKit/buildx for builds.
DOCKER_CANDIDATES = ("/usr/bin/docker",)
COMPOSE_CANDIDATES = ("/usr/bin/docker-compose",)
SOCKET = Path("/var/run/docker.sock")


class DockerError(RuntimeError):
    """A docker command failed; the message carries the command and its stderr's tail."""


def _find(candidates: Sequence[str], name: str) -> str | None:
    for path in candidates:
        if os.access(path, os.X_OK):
            return path
    return shutil.which(name)


def docker_binary() -> str | None:
    return _find(DOCKER_CANDIDATES, "docker")


def compose_binary() -> str | None:
    return _find(COMPOSE_CANDIDATES, "docker-compose")


def run(argv: Sequence[str], *, timeout: float, env: Mapping[str, str] | None = None,
        cwd: Path | None = None, check: bool = True, input_bytes: bytes | None = None,
        ) -> subprocess.CompletedProcess[str]:
    try:
        proc = subprocess.run(list(argv), capture_output=True, text=input_bytes is None,
                              timeout=timeout, env=None if env is None else {**os.environ, **env},
                              cwd=cwd, check=False, input=input_bytes)
    except subprocess.TimeoutExpired as exc:
        raise DockerError(f"{' '.join(argv[:4])}... timed out after {timeout:.0f}s") from exc
    if isinstance(proc.stdout, bytes):  # input given as bytes: decode afterwards
        proc = subprocess.CompletedProcess(proc.args, proc.returncode,
                                           proc.stdout.decode(errors="replace"),
                                           proc.stderr.decode(errors="replace"))
    if check and proc.returncode != 0:
        tail = (proc.stderr or proc.stdout or "").strip()[-3000:]
        raise DockerError(f"{' '.join(argv[:6])} exited {proc.returncode}: {tail}")
    return proc


class Docker:
    """``docker`` with a fixed binary; every call has a timeout."""

    def __init__(self, binary: str) -> None:
        self.binary = binary

    def __call__(self, *args: str, timeout: float = 120, check: bool = True,
                 env: Mapping[str, str] | None = None, cwd: Path | None = None,
                 input_bytes: bytes | None = None) -> str:
        return run([self.binary, *args], timeout=timeout, check=check, env=env, cwd=cwd,
                   input_bytes=input_bytes).stdout

    def ok(self, *args: str, timeout: float = 60) -> bool:
        return run([self.binary, *args], timeout=timeout, check=False).returncode == 0

    def inspect(self, *names: str, kind: str = "container") -> list[dict[str, Any]]:
        out = self(kind, "inspect", *names, timeout=60)
        data = json.loads(out)
        assert isinstance(data, list)
        return data

    def image_exists(self, ref: str) -> bool:
        return self.ok("image", "inspect", ref)

    def ids(self, *args: str) -> list[str]:
        """IDs printed one a line by a listing command (``ps -aq --filter ...``)."""
        return [line for line in self(*args, timeout=60).split() if line]
