"""Draw one dashboard's panels into a PNG laid out like Grafana's grid (matplotlib, Agg).

Grafana's grid is 24 columns wide and 30 px per row unit; the picture keeps that
geometry (1600 px wide), Grafana's dark theme, its classic palette and named colours,
and per panel type what Grafana draws: lines (stacked areas or bars when asked) with
dashed thresholds, state timelines coloured by value mapping, stat values coloured
by thresholds or mappings, tables after their merge/organize transformations.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fleetobs.generate.dashboards.livedata import PanelData
from fleetobs.generate.dashboards.units import fmt

WIDTH_PX, ROW_PX, HEADER_PX, DPI = 1600, 30, 44, 100
BACKGROUND, PANEL, BORDER, TEXT, MUTED = "#111217", "#181b1f", "#2c3235", "#ccccdc", "#8e8e8e"
PALETTE = ("#73bf69", "#f2cc0c", "#8ab8ff", "#ff780a", "#f2495c", "#5794f2", "#b877d9",
           "#705da0", "#37872d", "#fade2a", "#447ebc", "#c15c17")
NAMED = {"green": "#73bf69", "yellow": "#fade2a", "orange": "#ff9830", "red": "#f2495c",
         "dark-red": "#c4162a", "blue": "#5794f2", "purple": "#b877d9", "text": TEXT,
         "transparent": PANEL}


@dataclass
class PanelReport:
    title: str
    kind: str
    box: tuple[int, int, int, int]  # pixels: left, top, right, bottom
    series: int = 0
    lines: int = 0  # lines (or areas, bars, state rows) drawn
    colours: list[str] = field(default_factory=list)  # of what was drawn


def colour(name: str) -> str:
    return NAMED.get(name, name)


def fixed_colours(panel: Mapping[str, Any]) -> dict[str, str]:
    """Series name -> the fixed colour its ``byNames`` override gives it."""
    out: dict[str, str] = {}
    for o in panel["fieldConfig"]["overrides"]:
        if o["matcher"]["id"] != "byNames":
            continue
        for prop in o["properties"]:
            if prop["id"] == "color" and prop["value"].get("mode") == "fixed":
                out.update(dict.fromkeys(o["matcher"]["options"]["names"], colour(prop["value"]["fixedColor"])))
    return out


def _threshold_colour(defaults: Mapping[str, Any], value: float) -> str:
    steps = defaults.get("thresholds", {}).get("steps", [])
    chosen = steps[0]["color"] if steps else "green"
    for s in steps[1:]:  # the first step is -Infinity, whatever its value
        if value >= s["value"]:
            chosen = s["color"]
    return colour(chosen)


def mapped(defaults: Mapping[str, Any], value: float | str) -> tuple[str, str] | None:
    """(text, colour) of a value mapping matching ``value``, if any."""
    key = value if isinstance(value, str) else (f"{value:g}" if math.isfinite(value) else "")
    for m in defaults.get("mappings", []):
        if m.get("type") == "value" and key in m["options"]:
            r = m["options"][key]
            return r.get("text", key), colour(r.get("color", "text"))
    return None


def _display(defaults: Mapping[str, Any], value: float) -> tuple[str, str]:
    hit = mapped(defaults, value)
    if hit is not None:
        return hit
    return fmt(value, defaults.get("unit", "none")), _threshold_colour(defaults, value)


def _time_axis(ax: Any) -> None:
    import matplotlib.dates as mdates

    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S"))  # type: ignore[no-untyped-call]


#: Tick spacings of a time axis, seconds (AutoDateLocator finds none for some ranges).
_TICK_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)


def _time_ticks(ax: Any) -> None:
    """At most 6 ticks, on round times."""
    from matplotlib.ticker import MultipleLocator

    lo, hi = ax.get_xlim()  # matplotlib dates: days
    span = max((hi - lo) * 86400, 1.0)
    step = next((s for s in _TICK_STEPS if span / s <= 6), _TICK_STEPS[-1])
    ax.xaxis.set_major_locator(MultipleLocator(step / 86400))


def _style(ax: Any) -> None:
    ax.set_facecolor(PANEL)
    for side in ax.spines.values():
        side.set_visible(False)
    ax.tick_params(colors=MUTED, labelsize=7, length=0)
    ax.grid(True, color=BORDER, linewidth=0.6)


def _dates(points: Sequence[tuple[float, float]]) -> list[Any]:
    from datetime import UTC, datetime

    return [datetime.fromtimestamp(t, UTC) for t, _ in points]


def _timeseries(ax: Any, data: PanelData, rep: PanelReport) -> None:
    from matplotlib.ticker import FuncFormatter

    p = data.panel
    defaults = p["fieldConfig"]["defaults"]
    custom = defaults.get("custom", {})
    unit = defaults.get("unit", "none")
    stacked = custom.get("stacking", {}).get("mode") == "normal"
    dashed = {n for o in p["fieldConfig"]["overrides"] if o["matcher"]["id"] == "byNames"
              for n in o["matcher"]["options"]["names"]}
    _style(ax)
    _time_axis(ax)
    series = [s for s in data.series if s.points]
    times = sorted({t for s in series for t, _ in s.points})
    bottom = dict.fromkeys(times, 0.0)
    fixed = fixed_colours(p)
    for i, s in enumerate(series):
        c = fixed.get(s.name, PALETTE[i % len(PALETTE)])
        xs = _dates(s.points)
        ys = [v for _, v in s.points]
        if stacked:
            base = [bottom[t] for t, _ in s.points]
            top = [b + v for b, v in zip(base, ys, strict=True)]
            ax.fill_between(xs, base, top, color=c, alpha=0.55, linewidth=0, step="post")
            ax.plot(xs, top, color=c, linewidth=1.2, drawstyle="steps-post", label=s.name)
            for (t, _), v in zip(s.points, top, strict=True):
                bottom[t] = v
        else:
            ax.plot(xs, ys, color=c, linewidth=1.6, linestyle="--" if s.name in dashed else "-", label=s.name)
        rep.lines += 1
        rep.colours.append(c)
    if "dashed" in custom.get("thresholdsStyle", {}).get("mode", "") and times:
        for step in defaults.get("thresholds", {}).get("steps", [])[1:]:
            ax.axhline(step["value"], color=colour(step["color"]), linestyle="--", linewidth=1)
    if "min" in defaults:
        ax.set_ylim(bottom=defaults["min"])
    if "max" in defaults:
        ax.set_ylim(top=defaults["max"])
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: fmt(v, unit)))
    if series:
        ax.legend(loc="upper left", fontsize=6, frameon=False, labelcolor=TEXT,
                  ncol=2 if len(series) > 4 else 1, handlelength=1.2)
        if len(series) > 8:  # Grafana scrolls its legend; a picture keeps the first ones
            ax.legend(ax.get_lines()[:8], [s.name for s in series[:8]], loc="upper left", fontsize=6,
                      frameon=False, labelcolor=TEXT, ncol=2, handlelength=1.2)


def _state_timeline(ax: Any, data: PanelData, rep: PanelReport) -> None:
    defaults = data.panel["fieldConfig"]["defaults"]
    _style(ax)
    _time_axis(ax)
    ax.grid(False)
    series = [s for s in data.series if s.points][:24]
    for row, s in enumerate(series):
        xs = _dates(s.points)
        for i, (_t, v) in enumerate(s.points):
            hit = mapped(defaults, v)
            c = hit[1] if hit else _threshold_colour(defaults, v)
            end = xs[i + 1] if i + 1 < len(xs) else xs[i]
            width = (end - xs[i]) if i + 1 < len(xs) else (xs[i] - xs[i - 1] if i else None)
            if width is None:
                continue
            ax.barh(row, width, left=xs[i], height=0.8, color=c, linewidth=0)
            if c not in rep.colours:
                rep.colours.append(c)
        rep.lines += 1
    ax.set_yticks(range(len(series)), [s.name for s in series], fontsize=6, color=TEXT)
    ax.set_ylim(len(series) - 0.5, -0.5)


def _stat(ax: Any, data: PanelData, rep: PanelReport) -> None:
    p = data.panel
    defaults = p["fieldConfig"]["defaults"]
    options = p["options"]
    ax.set_axis_off()
    values = [(s.name, s.last) for s in data.series if s.last is not None]
    if not values:
        text = defaults.get("noValue")
        if text is None:
            return
        values = [("", float(text)) if text.replace(".", "", 1).isdigit() else ("", math.nan)]
    n = len(values)
    cols = min(n, 6)
    rows = math.ceil(n / cols)
    named = options.get("textMode") in ("value_and_name", "name") and n >= 1
    size = max(8, min(26, 60 / max(rows, cols ** 0.7)))
    cell_px = (rep.box[2] - rep.box[0] - 16) / cols

    def fits(text: str, pt: float) -> float:  # a bold capital is ~0.75 em wide
        return max(5.0, min(pt, cell_px * 0.9 / max(len(text), 1) / 0.75 * 72 / DPI))

    fixed = fixed_colours(p)
    for i, (name, value) in enumerate(values[:36]):
        r, c = divmod(i, cols)
        x0, y0, w, h = c / cols, 1 - (r + 1) / rows, 1 / cols, 1 / rows
        text, col = _display(defaults, value) if value is not None and not math.isnan(value) else ("", TEXT)
        if name in fixed and mapped(defaults, value) is None:
            col = fixed[name]
        if options.get("colorMode") == "background":
            ax.add_patch(_rect(x0 + 0.01, y0 + 0.04, w - 0.02, h - 0.08, col))
            fg = "#ffffff"
        else:
            fg = col
        shown = name if options.get("textMode") == "name" else text
        ax.text(x0 + w / 2, y0 + h * (0.58 if named and shown != name else 0.5), shown, ha="center",
                va="center", fontsize=fits(shown, size if shown == text else size * 0.6), color=fg,
                weight="bold", transform=ax.transAxes, clip_on=True)
        if named and shown != name:
            ax.text(x0 + w / 2, y0 + h * 0.2, name, ha="center", va="center", fontsize=fits(name, 6.5),
                    color=fg if options.get("colorMode") == "background" else TEXT, transform=ax.transAxes)
        rep.lines += 1
        rep.colours.append(col)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)


def _rect(x: float, y: float, w: float, h: float, c: str, transform: Any = None) -> Any:
    from matplotlib.patches import Rectangle

    if transform is None:
        return Rectangle((x, y), w, h, facecolor=c, edgecolor="none")
    # A figure-level background: below every axes (they are drawn at zorder 0).
    return Rectangle((x, y), w, h, facecolor=c, edgecolor="none", transform=transform, zorder=-1)


def table_rows(data: PanelData) -> tuple[list[str], list[list[str]]]:
    """Columns and rows as Grafana shows them: frames merged on their common labels
    (``merge``), then ``organize`` (hide, rename, order). Values keep ``Value #<ref>``."""
    p = data.panel
    defaults = p["fieldConfig"]["defaults"]
    merged: dict[tuple[tuple[str, str], ...], dict[str, str]] = {}
    multi = len(data.targets) > 1
    for i, target in enumerate(data.targets):
        ref = p["targets"][i]["refId"]
        for s in target:
            labels = {k: v for k, v in s.labels.items() if k != "__name__"}
            key = tuple(sorted(labels.items()))
            # later frames join rows whose labels they share (a subset) or start a row
            row = next((r for k, r in merged.items() if set(key) <= set(k)), None)
            if row is None:
                row = merged.setdefault(key, dict(labels))
            row["Value #" + ref if multi else "Value"] = "" if s.last is None else _display(defaults, s.last)[0]
    organize: dict[str, Any] = next((t["options"] for t in p.get("transformations", []) if t["id"] == "organize"), {})
    hidden = {k for k, v in organize.get("excludeByName", {}).items() if v} | {"Time"}
    order = organize.get("indexByName", {})
    names = [c for c in dict.fromkeys(k for r in merged.values() for k in r) if c not in hidden]
    names.sort(key=lambda c: (order.get(c, len(order) + (1 if c.startswith("Value") else 0)), c))
    rename = organize.get("renameByName", {})
    rows = []
    for r in merged.values():
        rows.append([(m[0] if (m := mapped(defaults, r.get(c, ""))) else r.get(c, "")) for c in names])
    return [rename.get(c, c) for c in names], sorted(rows)


def _table(ax: Any, data: PanelData, rep: PanelReport) -> None:
    ax.set_axis_off()
    columns, rows = table_rows(data)
    if not rows:
        return
    chars = max(8, int((rep.box[2] - rep.box[0]) / max(len(columns), 1) / 5.5))
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    width = 1 / max(len(columns), 1)
    line = min(0.12, 1 / (len(rows) + 1.5))
    for j, c in enumerate(columns):
        ax.text(0.01 + j * width, 1 - line * 0.8, c, fontsize=7, color=PALETTE[5], weight="bold",
                transform=ax.transAxes, va="center", clip_on=True)
    for i, row in enumerate(rows[: int(1 / line) - 1]):
        y = 1 - line * (i + 1.8)
        for j, cell in enumerate(row):
            ax.text(0.01 + j * width, y, str(cell)[:chars], fontsize=6.5, color=TEXT, transform=ax.transAxes,
                    va="center", clip_on=True)
        rep.lines += 1
    rep.colours.append(TEXT)


def _note(ax: Any, text: str, expr: str = "") -> None:
    ax.set_axis_off()
    ax.text(0.5, 0.55, text, ha="center", va="center", fontsize=8, color=MUTED, transform=ax.transAxes)
    if expr:
        ax.text(0.5, 0.35, expr[:110], ha="center", va="center", fontsize=6, color=MUTED,
                family="monospace", transform=ax.transAxes)


DRAW = {"timeseries": _timeseries, "state-timeline": _state_timeline, "stat": _stat, "table": _table}


def draw(doc: Mapping[str, Any], data: Sequence[PanelData], path: Path, subtitle: str = "",
         time_range: tuple[float, float] | None = None) -> list[PanelReport]:
    """Write the PNG; returns what each panel drew. Time axes span ``time_range`` (unix
    seconds), the dashboard's range, as in Grafana."""
    import matplotlib

    matplotlib.use("Agg")
    # Queries and legends are full of "$": no mathtext.
    with matplotlib.rc_context({"text.parse_math": False}):
        return _draw(doc, data, path, subtitle, time_range)


def _draw(doc: Mapping[str, Any], data: Sequence[PanelData], path: Path, subtitle: str,
          time_range: tuple[float, float] | None) -> list[PanelReport]:
    import matplotlib.pyplot as plt

    rows = max((p["gridPos"]["y"] + p["gridPos"]["h"] for p in doc["panels"]), default=1)
    height = HEADER_PX + rows * ROW_PX
    fig = plt.figure(figsize=(WIDTH_PX / DPI, height / DPI), dpi=DPI, facecolor=BACKGROUND)
    fig.text(12 / WIDTH_PX, 1 - 22 / height, doc["title"], fontsize=13, color=TEXT, weight="bold", va="center")
    if subtitle:
        fig.text(1 - 12 / WIDTH_PX, 1 - 22 / height, subtitle, fontsize=8, color=MUTED, va="center", ha="right")
    reports = []
    col = WIDTH_PX / 24
    for d in data:
        p, pos = d.panel, d.panel["gridPos"]
        left, top = pos["x"] * col + 4, HEADER_PX + pos["y"] * ROW_PX + 4
        right, bottom = (pos["x"] + pos["w"]) * col - 4, HEADER_PX + (pos["y"] + pos["h"]) * ROW_PX - 4
        rep = PanelReport(p.get("title", ""), p["type"], (round(left), round(top), round(right), round(bottom)),
                          series=len(d.series))
        reports.append(rep)
        fx, fw = left / WIDTH_PX, (right - left) / WIDTH_PX
        if p["type"] == "row":
            fig.text(fx + 2 / WIDTH_PX, 1 - (top + 10) / height, p["title"], fontsize=10, color=TEXT,
                     weight="bold", va="center")
            continue
        # The panel's frame and title are figure-level artists: an axes each would double the cost.
        fig.add_artist(_rect(fx, 1 - bottom / height, fw, (bottom - top) / height, PANEL, fig.transFigure))
        fig.text(fx + 8 / WIDTH_PX, 1 - (top + 14) / height, p["title"], fontsize=8, color=TEXT,
                 weight="bold", va="center")
        inner_top, pad_bottom = top + 26, (20 if p["type"] in ("timeseries", "state-timeline") else 6)
        pad_left = {"timeseries": 70, "state-timeline": 170}.get(p["type"], 8)
        ax = fig.add_axes(((left + pad_left) / WIDTH_PX, 1 - (bottom - pad_bottom) / height,
                           max(right - left - pad_left - 10, 10) / WIDTH_PX,
                           max(bottom - pad_bottom - inner_top, 10) / height))
        if d.note:
            _note(ax, d.note, p["targets"][0]["expr"])
        elif not any(s.points for s in d.series) and not (p["type"] == "stat" and "noValue" in
                                                            p["fieldConfig"]["defaults"]):
            _note(ax, "No data")
        else:
            if time_range is not None and p["type"] in ("timeseries", "state-timeline"):
                # Before drawing: a lone point would otherwise give the date axis no range.
                ax.set_xlim(*_dates([(time_range[0], 0.0), (time_range[1], 0.0)]))
            DRAW[p["type"]](ax, d, rep)
            if p["type"] in ("timeseries", "state-timeline"):
                _time_ticks(ax)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, facecolor=BACKGROUND, pil_kwargs={"compress_level": 3})
    plt.close(fig)
    return reports

