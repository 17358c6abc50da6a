"""Print rich tables whole, in a terminal or into a pipe."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

#: Into a pipe, long cells (dependency lists, reasons) fold past this width.
PIPE_MAX_WIDTH = 160


def print_tables(renderables: Sequence[Any]) -> None:
    """Into a pipe or file at the width the tables need (rich's default 80 columns would
    cut names with an ellipsis), in a terminal at its width."""
    from rich.console import Console
    from rich.measure import Measurement

    console = Console()
    if not console.is_terminal:
        options = console.options.update_width(10_000)
        sizes = [Measurement.get(console, options, r) for r in renderables]
        # Wide enough for every unbreakable cell; foldable ones wrap past PIPE_MAX_WIDTH.
        need = max(*(m.minimum for m in sizes), min(max(m.maximum for m in sizes), PIPE_MAX_WIDTH))
        console = Console(width=need)
    for r in renderables:
        console.print(r)
