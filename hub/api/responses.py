"""A JSON response that always renders: the last line of defence behind the input boundary.

Everything entering the hub is cleaned where it enters (fleetobs.sanitize), so
rendering a view should never meet a lone surrogate or a NaN. If a bug (a plugin's, a
new input path) lets one through anyway, answering 500 for every ``GET /v1/agents`` is
the worst outcome: this class renders a cleaned copy instead, and logs once that it had
to, so the bug is seen without the API going down.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi.responses import JSONResponse
from loguru import logger

from fleetobs.sanitize import clean_json

_warned: set[str] = set()


class SafeJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        try:
            return json.dumps(content, ensure_ascii=False, allow_nan=False, indent=None,
                              separators=(",", ":")).encode("utf-8")
        except (ValueError, TypeError, RecursionError) as exc:  # UnicodeEncodeError is a ValueError
            kind = type(exc).__name__
            if kind not in _warned:
                _warned.add(kind)
                logger.warning("a response held a value JSON cannot carry ({}: {}); sent a cleaned "
                               "copy (a bug: the input boundary should have cleaned it)", kind, exc)
            return json.dumps(clean_json(content), ensure_ascii=False, allow_nan=False,
                              separators=(",", ":")).encode("utf-8")
