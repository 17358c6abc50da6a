"""Grafana's display units, for the preview: a number and a unit id -> the text Grafana shows.

Only the unit ids the dashboards use (tests/fleetobs/generate/dashboards checks every
panel's unit is one of them): bytes (IEC), Bps (SI), s, percentunit (0-1 ratios),
short, none, ops, reqps, watt, celsius, hertz, and ``suffix:<text>``.
"""

from __future__ import annotations

import math

_SI = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))
_IEC = ((1024**4, "TiB"), (1024**3, "GiB"), (1024**2, "MiB"), (1024, "KiB"))
KNOWN = frozenset({"bytes", "Bps", "s", "percentunit", "short", "none", "ops", "reqps", "watt",
                   "celsius", "hertz"})


def _num(x: float) -> str:
    if x == 0:
        return "0"
    digits = max(0, 2 - math.floor(math.log10(abs(x)))) if abs(x) < 1000 else 0
    text = f"{x:.{min(digits, 3)}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _scaled(x: float, table: tuple[tuple[float, str], ...], unit: str, base: str = "") -> str:
    for size, prefix in table:
        if abs(x) >= size:
            return f"{_num(x / size)} {prefix}{unit}"
    return f"{_num(x)} {base or unit}".rstrip()


def _seconds(x: float) -> str:
    a = abs(x)
    if a == 0:
        return "0 s"
    if a < 1e-3:
        return f"{_num(x * 1e6)} µs"
    if a < 1:
        return f"{_num(x * 1e3)} ms"
    if a < 60:
        return f"{_num(x)} s"
    if a < 3600:
        return f"{_num(x / 60)} min"
    if a < 86400:
        return f"{_num(x / 3600)} hour"
    return f"{_num(x / 86400)} day"


def is_known(unit: str) -> bool:
    return unit in KNOWN or unit.startswith("suffix:")


def fmt(value: float, unit: str) -> str:
    if math.isnan(value):
        return "NaN"
    if unit.startswith("suffix:"):
        return f"{_num(value)}{unit.removeprefix('suffix:')}"
    if unit == "bytes":
        return _scaled(value, _IEC, "", "B")
    if unit == "Bps":
        return _scaled(value, _SI, "B/s")
    if unit == "s":
        return _seconds(value)
    if unit == "percentunit":
        return f"{_num(value * 100)}%"
    if unit == "ops":
        return _scaled(value, _SI, "ops/s")
    if unit == "reqps":
        return _scaled(value, _SI, "req/s")
    if unit == "watt":
        return _scaled(value, _SI, "W")
    if unit == "hertz":
        return _scaled(value, _SI, "Hz")
    if unit == "celsius":
        return f"{_num(value)} °C"
    if unit == "short":
        return _scaled(value, _SI, "").strip()
    return _num(value)
