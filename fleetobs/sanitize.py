"""Make text and JSON values from outside always serialisable (the input boundary's rule).

Python's ``json.loads`` accepts what cannot be written back: a lone surrogate escape
(``"\\ud800"``) becomes a ``str`` that UTF-8 refuses to encode, ``NaN``/``1e400``
become floats that strict JSON refuses. One such value stored in a record would break
every response that includes it and every write of it to SQLite. Whatever enters from
an agent, a probe reply, a peer or a state file goes through these functions first:

* :func:`clean_text`: lone surrogates and NUL become U+FFFD (NUL also cuts C strings
  short in logs and tools); everything else is kept;
* :func:`clean_json`: a copy of a JSON-like value with every string (keys too) cleaned,
  non-finite floats replaced by ``None``, and nesting bounded;
* :func:`non_finite_path`: where a value holds a non-finite float (for a 422 that names it).

Standard library only: the probe library (fleetobs.probe) uses it and depends on
nothing but pyzmq and httpx. Pydantic fields use ``hub.api.models.CleanText``.
"""

from __future__ import annotations

import math
import re
from typing import Any

#: Code points that cannot be encoded as UTF-8 (lone surrogates) and NUL.
_BAD = re.compile("[\x00\ud800-\udfff]")
REPLACEMENT = "\ufffd"
#: Deeper than this, a nested value is cut (replaced by ``None``): pydantic's JSON parser
#: refuses deeper documents anyway, and recursion stays well inside Python's limit.
MAX_DEPTH = 200


def clean_text(text: str) -> str:
    """``text`` with lone surrogates and NUL replaced by U+FFFD (the same object when clean)."""
    if text.isascii():
        return text if "\x00" not in text else text.replace("\x00", REPLACEMENT)
    return _BAD.sub(REPLACEMENT, text)


def clean_optional(text: str | None) -> str | None:
    return None if text is None else clean_text(text)


def clean_json(value: Any, depth: int = 0) -> Any:
    """A copy of ``value`` that ``json.dumps(..., allow_nan=False)`` and UTF-8 always accept.

    Strings (keys too) go through :func:`clean_text`; non-finite floats, values nested
    deeper than :data:`MAX_DEPTH` and anything that is not a JSON type become ``None``;
    tuples become lists; integers too big to write as text (over 4,300 digits, Python's
    limit) become ``None``.
    """
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, int):
        return value if value.bit_length() < 14_000 else None  # ~4,200 decimal digits
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if depth >= MAX_DEPTH:
        return None
    if isinstance(value, dict):
        return {clean_text(str(k)): clean_json(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_json(v, depth + 1) for v in value]
    return None


def non_finite_path(value: Any, path: str = "") -> str | None:
    """The path (``.a[2].b``) of the first non-finite float in ``value``, else ``None``."""
    if isinstance(value, float):
        return None if math.isfinite(value) else (path or ".")
    if isinstance(value, dict):
        for k, v in value.items():
            found = non_finite_path(v, f"{path}.{k}")
            if found is not None:
                return found
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            found = non_finite_path(v, f"{path}[{i}]")
            if found is not None:
                return found
    return None


__all__ = ["MAX_DEPTH", "REPLACEMENT", "clean_json", "clean_optional", "clean_text", "non_finite_path"]
