"""Start, list and stop a set of local processes: the runner behind ``fleetobs demo``.

A :class:`ProcessSpec` says what one process is (name, argv, environment, the URL it
serves, a line of what it is, whether it is simulated) and how to tell it is up: a
regular expression its log must match (``ready``). :class:`Stack` starts them in
order, each waiting for the one before to be ready, and stops them all together:
SIGTERM to every one, SIGKILL to what is still running after ``stop_seconds``, so
Ctrl-C ends everything within about two seconds, also when a child hangs.

Children run in their own session (the terminal's Ctrl-C reaches only the runner, which
stops them in order) and die with the runner if it is killed itself (Linux
``PR_SET_PDEATHSIG``). Their output goes to ``<work>/logs/<name>.log``.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class ProcessSpec:
    name: str
    argv: Sequence[str]
    what: str
    url: str | None = None
    #: The log matches this once the process serves (None: started is enough).
    ready: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    simulated: bool = False
    ready_timeout: float = 60.0


@dataclass(frozen=True)
class Skipped:
    """A service the stack would run but does not, and why (shown in the table)."""

    name: str
    what: str
    why: str


class StackError(RuntimeError):
    pass


def _die_with_parent() -> None:
    # Runs in the child between fork and exec: a SIGKILLed runner leaves no orphans.
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass
class Running:
    spec: ProcessSpec
    proc: subprocess.Popen[bytes]
    log: Path
    started: float

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def tail(self, chars: int = 1500) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


class Stack:
    def __init__(self, work: Path, *, stop_seconds: float = 1.5,
                 environ: Mapping[str, str] | None = None) -> None:
        self.work = work
        self.logs = work / "logs"
        self.stop_seconds = stop_seconds
        self.environ = dict(os.environ if environ is None else environ)
        self.running: list[Running] = []
        #: Set it (a signal handler may) to abandon a start that is still waiting.
        self.interrupted = threading.Event()
        self._stopped = False

    def start(self, spec: ProcessSpec, wait: Callable[[], bool] | None = None) -> Running:
        """Start one process and wait until it is ready; raises :class:`StackError`."""
        self.logs.mkdir(parents=True, exist_ok=True)
        log = self.logs / f"{spec.name}.log"
        env = {**self.environ, "PYTHONUNBUFFERED": "1", **spec.env}
        with log.open("wb") as out:
            proc = subprocess.Popen(list(spec.argv), stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, env=env, start_new_session=True,
                                    preexec_fn=_die_with_parent)  # noqa: PLW1509 - one libc call
        run = Running(spec, proc, log, time.monotonic())
        self.running.append(run)
        pattern = re.compile(spec.ready) if spec.ready else None
        deadline = time.monotonic() + spec.ready_timeout
        while True:
            if not run.alive:
                raise StackError(f"{spec.name} exited with {proc.returncode}:\n{run.tail()}")
            if (pattern is None or pattern.search(run.tail(1_000_000))) and (wait is None or wait()):
                return run
            if self.interrupted.is_set():
                raise StackError("interrupted")
            if time.monotonic() > deadline:
                raise StackError(f"{spec.name} not ready within {spec.ready_timeout:g} s:\n{run.tail()}")
            time.sleep(0.05)

    def stop(self) -> float:
        """Stop every process (SIGTERM, then SIGKILL after ``stop_seconds``); idempotent.
        Returns the seconds it took."""
        t0 = time.monotonic()
        if self._stopped:
            return 0.0
        self._stopped = True
        for run in reversed(self.running):
            if run.alive:
                with contextlib.suppress(ProcessLookupError):
                    run.proc.send_signal(signal.SIGTERM)
        deadline = t0 + self.stop_seconds
        for run in self.running:
            with contextlib.suppress(subprocess.TimeoutExpired):
                run.proc.wait(timeout=max(deadline - time.monotonic(), 0.01))
        for run in self.running:
            if run.alive:
                with contextlib.suppress(ProcessLookupError):
                    run.proc.kill()
                run.proc.wait(timeout=5)
        return time.monotonic() - t0
