"""A rendering (relative path -> file text) and how it meets the file system.

Renderers are pure: they return text, never write. Writing, comparing and pruning stale
files happen here, once, for every target, so determinism and drift checks cannot differ
between targets.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

#: Relative POSIX path (e.g. ``prometheus/mainpc/prometheus.yml``) -> file content.
Rendering = Mapping[str, str]

#: Files never considered part of a generated folder.
_IGNORED_PARTS = frozenset({"__pycache__", ".pytest_cache"})


@dataclass(frozen=True)
class Drift:
    """How a folder on disk differs from a fresh rendering."""

    changed: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    stale: tuple[str, ...] = ()  # on disk inside a generated folder, no longer rendered

    def __bool__(self) -> bool:
        return bool(self.changed or self.missing or self.stale)

    def lines(self) -> list[str]:
        return ([f"changed: {p}" for p in self.changed] + [f"missing: {p}" for p in self.missing]
                + [f"stale:   {p}" for p in self.stale])


def check_paths(rendering: Rendering) -> None:
    """Reject paths that could escape the output folder (a renderer bug)."""
    for p in rendering:
        pure = PurePosixPath(p)
        if pure.is_absolute() or ".." in pure.parts or not pure.parts:
            raise ValueError(f"generated path {p!r} must be relative and inside the output folder")


def on_disk(root: Path, folders: tuple[str, ...]) -> set[str]:
    """Every file under the generated ``folders`` of ``root``, as relative POSIX paths."""
    found: set[str] = set()
    for folder in folders:
        base = root / folder
        if not base.is_dir():
            continue
        for f in base.rglob("*"):
            rel = f.relative_to(root)
            if f.is_file() and not _IGNORED_PARTS.intersection(rel.parts):
                found.add(rel.as_posix())
    return found


def diff(rendering: Rendering, root: Path, folders: tuple[str, ...]) -> Drift:
    check_paths(rendering)
    present = on_disk(root, folders)
    changed, missing = [], []
    for rel, text in sorted(rendering.items()):
        path = root / rel
        if rel not in present:
            missing.append(rel)
        elif path.read_bytes() != text.encode("utf-8"):
            changed.append(rel)
    stale = sorted(present - set(rendering))
    return Drift(tuple(changed), tuple(missing), tuple(stale))


def write(rendering: Rendering, root: Path, folders: tuple[str, ...]) -> Drift:
    """Make ``root``'s generated folders equal the rendering; returns what it changed."""
    drift = diff(rendering, root, folders)
    for rel in (*drift.changed, *drift.missing):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rendering[rel].encode("utf-8"))
    for rel in drift.stale:
        (root / rel).unlink()
    for folder in folders:  # drop directories the stale files leave empty
        base = root / folder
        if base.is_dir():
            for d in sorted((p for p in base.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
                if not any(d.iterdir()):
                    d.rmdir()
    return drift
