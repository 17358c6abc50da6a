from __future__ import annotations

import pytest

from fleetobs.topology.ports import PortExpressionError, expand_port


@pytest.mark.parametrize(
    ("value", "env", "expected"),
    [
        (7200, {}, 7200),
        ("7200", {}, 7200),
        ("${PORT_OFFSET}+7200", {"PORT_OFFSET": "0"}, 7200),
        ("${PORT_OFFSET}+7200", {"PORT_OFFSET": "100"}, 7300),
        ("${PORT_OFFSET} + 7200", {"PORT_OFFSET": "5"}, 7205),
        ("${BASE:-5000}+9", {}, 5009),
        ("${BASE:-5000}+9", {"BASE": "6000"}, 6009),
        ("$BASE+1", {"BASE": "10"}, 11),
        ("${A}+${B}-1", {"A": "100", "B": "20"}, 119),
    ],
)
def test_expansions(value: object, env: dict[str, str], expected: int) -> None:
    assert expand_port(value, env) == expected


@pytest.mark.parametrize(
    ("value", "env", "message"),
    [
        ("${MISSING}+1", {}, r"variable \$\{MISSING\} is not set and has no default"),
        ("__import__('os')", {}, "only integer sums are allowed"),
        ("7200*2", {}, "only integer sums are allowed"),
        ("${PORT_OFFSET}+70000", {"PORT_OFFSET": "0"}, "port 70000 .* is outside 1..65535"),
        (0, {}, "outside 1..65535"),
        (True, {}, "expected a port number, got True"),
        (7.5, {}, "got float"),
        (None, {}, "got NoneType"),
    ],
)
def test_bad_port_values_say_what_is_wrong(value: object, env: dict[str, str], message: str) -> None:
    with pytest.raises(PortExpressionError, match=message):
        expand_port(value, env)
