"""A cache of parsed topology documents, keyed by the SHA-256 of the file's text.

Parsing YAML is most of a hub's start at 10,000 agents (PyYAML's pure-Python loader
took 5.5 s, its C loader 1.5-2.6 s on the 2-core machine); reading the same document
back as JSON takes ~20 ms. The cache holds one document (the last topology loaded
with it) in ``<dir>/topology-cache.json``; a different text is a miss and replaces it.
Only documents that survive a JSON round trip unchanged are cached (YAML can hold
dates and non-string keys that JSON cannot), and a cached document is validated like
a parsed one, so a hit can never yield another topology than a parse would. The file
is as trusted as the hub's state beside it (same directory, same owner). Failing to
read or write it only costs the parse.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path
from typing import Any

CACHE_FILE = "topology-cache.json"
FORMAT = 1


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def cached_document(cache_dir: Path, key: str) -> Any | None:
    """The document cached under ``key``, or ``None``."""
    try:
        doc = json.loads((cache_dir / CACHE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or doc.get("sha256") != key:
        return None
    return doc.get("document")


def store_document(cache_dir: Path, key: str, document: Any) -> bool:
    """Cache ``document`` under ``key`` (atomically); False when it cannot or should not be."""
    try:
        text = json.dumps({"format": FORMAT, "sha256": key, "document": document},
                          separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        return False
    if json.loads(text)["document"] != document:
        return False  # int keys, tuples...: JSON would change it
    path = cache_dir / CACHE_FILE
    tmp = path.with_name(f".{CACHE_FILE}.{os.getpid()}.tmp")
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()
        return False
    return True
