"""Expand the port expressions the real startup configs use.

Seen in the wild: plain numbers, ``"${PORT_OFFSET}+7200"``, ``${VAR:-default}``
and ``$VAR``. Only integer sums and differences are evaluated, never Python.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_VAR = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}|\$(?P<bare>[A-Za-z_][A-Za-z0-9_]*)")
_SUM = re.compile(r"^\s*[+-]?\s*\d+(\s*[+-]\s*\d+)*\s*$")
_TERM = re.compile(r"([+-]?)\s*(\d+)")


class PortExpressionError(ValueError):
    pass


def substitute(text: str, env: Mapping[str, str]) -> str:
    """Replace ``${VAR}``, ``${VAR:-default}`` and ``$VAR``; unset without default is an error."""

    def repl(m: re.Match[str]) -> str:
        name = m.group("name") or m.group("bare")
        if name in env and env[name] != "":
            return env[name]
        default = m.group("default")
        if default is not None:
            return default
        raise PortExpressionError(f"variable ${{{name}}} is not set and has no default")

    return _VAR.sub(repl, text)


def expand_port(value: object, env: Mapping[str, str]) -> int:
    """Turn a port field into an int in 1..65535, or raise with what is wrong."""
    if isinstance(value, bool):
        raise PortExpressionError(f"expected a port number, got {value!r}")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str):
        expanded = substitute(value, env)
        if not _SUM.match(expanded):
            raise PortExpressionError(
                f"cannot evaluate {value!r} (expanded to {expanded!r}): only integer sums are allowed"
            )
        number = sum(int(d) * (-1 if sign == "-" else 1) for sign, d in _TERM.findall(expanded))
    else:
        raise PortExpressionError(f"expected a port number or expression, got {type(value).__name__}")
    if not 1 <= number <= 65535:
        raise PortExpressionError(f"port {number} (from {value!r}) is outside 1..65535")
    return number
