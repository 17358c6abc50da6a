"""The hub process's own resources: open files and the garbage collector.

* Open files: a bare process often starts with a soft limit of 1,024 descriptors; every
  TCP connection takes one, so a few hundred idle clients could starve ``/health``.
  :func:`raise_open_files_limit` lifts the soft limit to the hard one at start (as
  nginx's ``worker_rlimit_nofile`` does); :class:`OpenFiles` reports the limit and the
  use (metrics) and logs one line when the use nears the limit.
* Garbage collector: at 10,000 agents the hub holds a few hundred thousand long-lived
  objects, and every full collection walked all of them (~100 ms, freeing nothing) every
  few seconds: heartbeat p99 was 9x its p50. :func:`freeze_after_start` moves what
  exists at ``/ready`` to the permanent generation (``gc.freeze()``, made for exactly
  this) and tunes the young thresholds, so collections walk only new objects, in short steps.
  :func:`collections_held` keeps the collector off until then: start-up builds those
  objects and frees almost nothing, so every full collection during it (imports, the
  topology, 10,000 restored records) was wasted work, ~0.5 s of a 10,000-agent restart.

Process-wide, so only the ``fleetobs hub`` command calls these (tests of the hub
library leave the interpreter as it is unless they ask).
"""

from __future__ import annotations

import errno
import gc
import os
import resource
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from loguru import logger

#: Young-generation threshold after start (CPython's default is 700): fewer, still
#: small, young collections.
GC_THRESHOLD0 = 10_000
#: Young collections per middle-generation one (CPython's default is 10). With 10 and the
#: threshold above, a middle collection walked up to 100,000 survivors: a 35 ms pause
#: while 10,000 new names arrived; with 2 it walks at most ~20,000 (under 10 ms).
GC_THRESHOLD1 = 2
#: Share of the limit in use at which the hub warns (once, until it drops below REARM).
WARN_RATIO = 0.9
REARM_RATIO = 0.8


def open_files_limit() -> tuple[int, int]:
    """(soft, hard) RLIMIT_NOFILE; -1 when unlimited."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    inf = resource.RLIM_INFINITY
    return (-1 if soft == inf else int(soft)), (-1 if hard == inf else int(hard))


def raise_open_files_limit(target: int | None = None) -> tuple[int, int]:
    """Raise the soft open-files limit to the hard limit (or ``target``, if lower);
    returns (before, after), -1 meaning unlimited. Never fatal: a refusal keeps the limit."""
    inf = resource.RLIM_INFINITY
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == inf:
        return -1, -1
    # An unlimited hard limit: a large finite soft one (Linux caps it at fs.nr_open).
    want = hard if hard != inf else 1 << 20
    if target is not None:
        want = min(want, target)
    if want <= soft:
        return int(soft), int(soft)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    except (ValueError, OSError):
        return int(soft), int(soft)
    return int(soft), open_files_limit()[0]


def open_files_in_use(fd_dir: Path = Path("/proc/self/fd"),
                      limit: Callable[[], tuple[int, int]] = open_files_limit) -> int | None:
    """Descriptors open now (Linux); ``None`` where it cannot be counted.

    Listing the directory takes a descriptor itself: when none is left (EMFILE), all of
    them are in use, which is the soft limit (the moment the gauge matters most).
    """
    try:
        return len(os.listdir(fd_dir))
    except OSError as exc:
        if exc.errno == errno.EMFILE:
            soft = limit()[0]
            return soft if soft > 0 else None
        return None


#: Connections closed for idling between two checks that make a burst worth a warning.
IDLE_BURST = 100


class OpenFiles:
    """Limit and use of open files, checked now and then; warns once per episode.

    Also warns when a burst of connections was closed for idling (``closed_idle``: the
    running count), which is what a flood of idle clients looks like from here: the
    peak of open files may fall between two checks, the closures do not.
    """

    def __init__(self, in_use: Callable[[], int | None] = open_files_in_use,
                 limit: Callable[[], tuple[int, int]] = open_files_limit,
                 idle_timeout_seconds: float | None = None,
                 closed_idle: Callable[[], int] = lambda: 0) -> None:
        self._in_use = in_use
        self._limit = limit
        self._closed_idle = closed_idle
        self.idle_timeout_seconds = idle_timeout_seconds
        self.used: int | None = None
        self.soft = -1
        self._warned = False
        self._idle_seen = 0
        self._idle_warned = False

    def sample(self) -> tuple[int, int | None]:
        """(soft limit, in use) now; also kept in ``soft`` and ``used``."""
        self.soft = self._limit()[0]
        self.used = self._in_use()
        return self.soft, self.used

    def check(self) -> None:
        """Sample, and warn once when the use nears the limit (again after it eased)."""
        self.sample()
        closed = self._closed_idle()
        burst, self._idle_seen = closed - self._idle_seen, closed
        if burst >= IDLE_BURST and not self._idle_warned:
            self._idle_warned = True
            logger.warning("hub: {} connections closed for sending no request within {:g} s since "
                           "the last check (idle or slow clients); {} of {} open files in use",
                           burst, self.idle_timeout_seconds or 0, self.used, self.soft)
        elif burst < IDLE_BURST // 10:
            self._idle_warned = False
        if self.used is None or self.soft <= 0:
            return
        ratio = self.used / self.soft
        if ratio >= WARN_RATIO and not self._warned:
            self._warned = True
            closing = (f"; idle connections are closed after {self.idle_timeout_seconds:g} s"
                       if self.idle_timeout_seconds else "")
            logger.warning("hub: {} of {} open files in use (RLIMIT_NOFILE): new connections will "
                           "be refused when none are left{}", self.used, self.soft, closing)
        elif ratio < REARM_RATIO and self._warned:
            self._warned = False
            logger.info("hub: open files back to {} of {}", self.used, self.soft)


@contextmanager
def collections_held() -> Iterator[None]:
    """Automatic collections off inside, until :func:`freeze_after_start` turns them back
    on; on leaving they are on again whatever happened (a command that failed in-process
    must not leave its caller without a collector)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def freeze_after_start(threshold0: int = GC_THRESHOLD0, threshold1: int = GC_THRESHOLD1) -> int:
    """Freeze every tracked object, set the young thresholds and (inside
    :func:`collections_held`) collect automatically again; returns the frozen count.

    No collection first (what CPython's documentation advises for ``gc.freeze()``): at
    10,000 agents it was a ~200 ms pause of the event loop a second after ``/ready``, to
    free ~2,500 objects of start-up garbage, which are kept instead (well under 1 MB).
    """
    gc.freeze()
    t2 = gc.get_threshold()[2]
    gc.set_threshold(threshold0, threshold1, t2)
    gc.enable()
    return gc.get_freeze_count()
