"""
The charts of docs/benchmarks.md, drawn as SVG files from the same JSON as its tables (no plotting library).

``benchmarks/render.py`` calls :func:`write_charts` each time it renders the page, so ``make bench`` and
``python -m benchmarks.render`` both redraw them. A chart whose results are missing says so in the image, so
the page (and Sphinx's strict build) always finds its files. The output depends on the JSON only: drawing
twice gives the same bytes.

Reproduce::

    .venv/bin/python -m benchmarks.render
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from benchmarks.common import ROOT

IMAGES = ROOT / "docs" / "images"
WIDTH, HEIGHT = 860, 380
LEFT, RIGHT, TOP, BOTTOM = 70, 320, 44, 56  # margins: the legend sits on the right
#: Okabe-Ito colours: told apart with the common colour-vision deficiencies, and in greyscale by marker.
COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
MARKERS = ("circle", "square", "diamond", "triangle", "circle", "square", "diamond")
#: Variants in the order (and the colours) every scale chart uses.
VARIANT_ORDER = (
    "aiohttp_shared",
    "trigger",
    "trigger_uncached",
    "httpx_shared",
    "to_thread",
    "aiohttp_per_job",
    "trigger_before",
)
VARIANT_NAMES = {
    "aiohttp_shared": "raw aiohttp, shared session (floor)",
    "trigger": "OpusJobTrigger",
    "trigger_uncached": "OpusJobTrigger, connection read per trigger",
    "httpx_shared": "raw httpx, shared client",
    "to_thread": "sync hook via asyncio.to_thread",
    "aiohttp_per_job": "raw aiohttp, session per job",
    "trigger_before": "OpusJobTrigger of the --before commit",
}

Points = list[tuple[float, float]]


@dataclass(frozen=True)
class Axis:
    """An axis: its label, and whether it is logarithmic."""

    label: str
    log: bool = False


def _fmt(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _tick_label(value: float) -> str:
    if value >= 1000:
        return f"{value:,.0f}"
    if value >= 1 or value == 0:
        return f"{value:g}"
    return f"{value:.3g}"


def _ticks(low: float, high: float, log: bool) -> list[float]:
    """Round tick values covering [low, high]: 1-2-5 steps on a log axis, about six even steps otherwise."""
    if log:
        ticks = []
        for exponent in range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1):
            ticks += [m * 10**exponent for m in (1, 2, 5)]
        return [t for t in ticks if low <= t <= high * 1.0001]
    step = 10 ** math.floor(math.log10((high - low) / 6 or 1))
    for factor in (1, 2, 5, 10):
        if (high - low) / (step * factor) <= 7:
            step *= factor
            break
    first = math.ceil(low / step) * step
    return [round(first + i * step, 10) for i in range(int((high - first) / step + 1e-9) + 1)]


def _range(values: Iterable[float], log: bool, zero: bool) -> tuple[float, float]:
    values = [v for v in values if v is not None and math.isfinite(v) and (v > 0 or not log)]
    if not values:
        return (1.0, 10.0) if log else (0.0, 1.0)
    low, high = min(values), max(values)
    if log:
        return 10 ** math.floor(math.log10(low)), 10 ** math.ceil(math.log10(high))
    low = 0.0 if zero else low
    high = high * 1.08 if high > low else low + 1
    step = _ticks(low, high, False)
    return low, max(high, step[-1] if step else high)


def _marker(kind: str, x: float, y: float, colour: str, tip: str) -> str:
    title = f"<title>{escape(tip)}</title>"
    if kind == "square":
        return f'<rect x="{_fmt(x - 4)}" y="{_fmt(y - 4)}" width="8" height="8" fill="{colour}">{title}</rect>'
    if kind == "diamond":
        points = f"{_fmt(x)},{_fmt(y - 5)} {_fmt(x + 5)},{_fmt(y)} {_fmt(x)},{_fmt(y + 5)} {_fmt(x - 5)},{_fmt(y)}"
        return f'<polygon points="{points}" fill="{colour}">{title}</polygon>'
    if kind == "triangle":
        points = f"{_fmt(x)},{_fmt(y - 5)} {_fmt(x + 5)},{_fmt(y + 4)} {_fmt(x - 5)},{_fmt(y + 4)}"
        return f'<polygon points="{points}" fill="{colour}">{title}</polygon>'
    return f'<circle cx="{_fmt(x)}" cy="{_fmt(y)}" r="4" fill="{colour}">{title}</circle>'


def _frame(title: str, note: str, height: int = HEIGHT) -> list[str]:
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12" role="img">',
        f"<title>{escape(title)}</title>",
        f'<rect width="{WIDTH}" height="{height}" fill="#ffffff"/>',
        f'<text x="{LEFT}" y="22" font-size="14" font-weight="bold">{escape(title)}</text>',
    ]
    if note:
        parts.append(f'<text x="{LEFT}" y="{height - 8}" font-size="11" fill="#555555">{escape(note)}</text>')
    return parts


def _empty(title: str, message: str) -> str:
    parts = _frame(title, "")
    parts.append(f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle" fill="#555555">{escape(message)}</text>')
    return "\n".join([*parts, "</svg>"]) + "\n"


def line_chart(
    title: str,
    x_axis: Axis,
    y_axis: Axis,
    series: Sequence[tuple[str, Points]],
    note: str = "",
    x_ticks: Sequence[float] | None = None,
    tip: Callable[[str, float, float], str] | None = None,
) -> str:
    """
    Return an SVG line chart: one line with markers per series, a legend on the right.

    :param title: the title, also the image's accessible name.
    :param x_axis: the horizontal axis.
    :param y_axis: the vertical axis.
    :param series: (label, points) per line; a series without points is left out.
    :param note: a line of small print under the chart (what was measured, where).
    :param x_ticks: ticks of the horizontal axis (default: round values).
    :param tip: the tooltip of a point, from (label, x, y).
    """
    series = [(label, points) for label, points in series if points]
    if not series:
        return _empty(title, "No results yet: run make bench.")
    xs = [x for _, points in series for x, _ in points]
    ys = [y for _, points in series for _, y in points]
    x_low, x_high = _range(xs, x_axis.log, zero=False)
    if x_ticks:
        # The ticks given are the data's own positions (N, hours): the axis spans them, with a margin.
        x_low, x_high = min(*x_ticks, *xs), max(*x_ticks, *xs)
        if x_axis.log:
            x_low, x_high = x_low / 1.25, x_high * 1.25
    if not x_axis.log and x_high == x_low:
        x_high = x_low + 1
    y_low, y_high = _range(ys, y_axis.log, zero=True)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def sx(x: float) -> float:
        if x_axis.log:
            return LEFT + plot_w * (math.log10(x) - math.log10(x_low)) / (math.log10(x_high) - math.log10(x_low))
        return LEFT + plot_w * (x - x_low) / (x_high - x_low)

    def sy(y: float) -> float:
        if y_axis.log:
            y = max(y, y_low)
            return TOP + plot_h * (1 - (math.log10(y) - math.log10(y_low)) / (math.log10(y_high) - math.log10(y_low)))
        return TOP + plot_h * (1 - (y - y_low) / (y_high - y_low))

    parts = _frame(title, note)
    for tick in _ticks(y_low, y_high, y_axis.log):
        y = sy(tick)
        parts.append(f'<line x1="{LEFT}" y1="{_fmt(y)}" x2="{LEFT + plot_w}" y2="{_fmt(y)}" stroke="#e5e5e5"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{_fmt(y + 4)}" text-anchor="end">{_tick_label(tick)}</text>')
    for tick in x_ticks or _ticks(x_low, x_high, x_axis.log):
        x = sx(tick)
        parts.append(f'<line x1="{_fmt(x)}" y1="{TOP}" x2="{_fmt(x)}" y2="{TOP + plot_h}" stroke="#f0f0f0"/>')
        parts.append(f'<text x="{_fmt(x)}" y="{TOP + plot_h + 16}" text-anchor="middle">{_tick_label(tick)}</text>')
    parts += [
        f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#888888"/>',
        f'<text x="{LEFT + plot_w / 2}" y="{TOP + plot_h + 36}" text-anchor="middle">{escape(x_axis.label)}</text>',
        f'<text transform="translate(16 {TOP + plot_h / 2}) rotate(-90)" text-anchor="middle">'
        f"{escape(y_axis.label)}</text>",
    ]
    for index, (label, points) in enumerate(series):
        colour, marker = COLOURS[index % len(COLOURS)], MARKERS[index % len(MARKERS)]
        path = " ".join(f"{_fmt(sx(x))},{_fmt(sy(y))}" for x, y in sorted(points))
        parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        if len(points) <= 12:
            for x, y in points:
                text = tip(label, x, y) if tip else f"{label}: {_tick_label(x)}, {y:.3g}"
                parts.append(_marker(marker, sx(x), sy(y), colour, text))
        legend_y = TOP + 8 + 20 * index
        legend_x = LEFT + plot_w + 16
        parts.append(
            f'<line x1="{legend_x}" y1="{legend_y}" x2="{legend_x + 22}" y2="{legend_y}" stroke="{colour}" '
            'stroke-width="2"/>'
        )
        parts.append(_marker(marker, legend_x + 11, legend_y, colour, label))
        parts.append(f'<text x="{legend_x + 30}" y="{legend_y + 4}">{escape(label)}</text>')
    return "\n".join([*parts, "</svg>"]) + "\n"


def bar_chart(title: str, axis_label: str, groups: Sequence[tuple[str, Sequence[tuple[str, float]]]], note: str) -> str:
    """
    Return an SVG chart of horizontal bars: per group (a measure), one bar per series, the value at its end.

    :param title: the title.
    :param axis_label: what the bars measure (unit included).
    :param groups: (group label, [(series label, value)]) in drawing order; a series keeps its colour everywhere.
    :param note: small print under the chart.
    """
    groups = [(label, [(name, value) for name, value in bars if value is not None]) for label, bars in groups]
    groups = [(label, bars) for label, bars in groups if bars]
    if not groups:
        return _empty(title, "No results yet: run make bench.")
    names = list(dict.fromkeys(name for _, bars in groups for name, _ in bars))
    high = _range([value for _, bars in groups for _, value in bars], False, zero=True)[1]
    left, plot_w = 300, WIDTH - 300 - 70
    bar_h, gap = 16, 14
    height = TOP + 10 + sum(18 + (bar_h + 4) * len(bars) + gap for _, bars in groups) + 40
    parts = _frame(title, note, height)
    y = TOP + 10
    for label, bars in groups:
        parts.append(f'<text x="{left - 8}" y="{y + 11}" text-anchor="end" font-weight="bold">{escape(label)}</text>')
        y += 18
        for name, value in bars:
            colour = COLOURS[names.index(name) % len(COLOURS)]
            width = plot_w * value / high if high else 0
            parts.append(f'<text x="{left - 8}" y="{_fmt(y + 12)}" text-anchor="end">{escape(name)}</text>')
            parts.append(
                f'<rect x="{left}" y="{_fmt(y)}" width="{_fmt(max(width, 1))}" height="{bar_h}" fill="{colour}">'
                f"<title>{escape(f'{name}: {value:,.0f} {axis_label}')}</title></rect>"
            )
            parts.append(f'<text x="{_fmt(left + width + 6)}" y="{_fmt(y + 12)}">{value:,.0f}</text>')
            y += bar_h + 4
        y += gap
    parts.append(f'<line x1="{left}" y1="{TOP}" x2="{left}" y2="{_fmt(y - gap)}" stroke="#888888"/>')
    parts.append(f'<text x="{left + plot_w / 2}" y="{_fmt(y + 4)}" text-anchor="middle">{escape(axis_label)}</text>')
    return "\n".join([*parts, "</svg>"]) + "\n"


# -- the page's charts ---------------------------------------------------------------------------------


def _sizes(summary: Mapping[str, Any]) -> dict[int, Mapping[str, Any]]:
    """The scale scenarios proper: N -> rows; the keep-alive and burst scenarios are about something else."""
    from benchmarks.triggerer_scale import KEEPALIVE_N

    return {int(name): rows for name, rows in summary.items() if name.isdigit() and int(name) != KEEPALIVE_N}


def _scale_series(summary: Mapping[str, Any], field: str) -> list[tuple[str, Points]]:
    sizes = _sizes(summary)
    series = []
    for variant in VARIANT_ORDER:
        points = [
            (float(n), float(rows[variant][field]))
            for n, rows in sorted(sizes.items())
            if variant in rows and rows[variant].get(field) is not None and not rows[variant].get("killed_runs")
        ]
        series.append((VARIANT_NAMES[variant], points))
    return series


def _scale_note(results: Mapping[str, Any]) -> str:
    machine = (results.get("run_all") or {}).get("machine", {})
    where = f"{machine.get('cpu_model', 'this machine')}, {machine.get('affinity_cpus', '?')} cores"
    return f"Median over rounds, one event loop, the emulator in its own process; {where}."


#: The scale charts: summary field -> title, vertical axis, unit of a point's tooltip.
SCALE_CHARTS = {
    "cpu_ms_per_poll": (
        "Client CPU per status poll (whole run) against the number of triggers",
        Axis("CPU per poll (ms)", log=True),
        "ms per poll",
    ),
    "lag_p99_ms": (
        "Event-loop lag, 99th percentile (whole run) against the number of triggers",
        Axis("loop lag p99 (ms)", log=True),
        "ms",
    ),
}


def _scale_chart(field: str, results: Mapping[str, Any]) -> str:
    summary = (results.get("triggerer_scale") or {}).get("summary", {})
    title, y_axis, unit = SCALE_CHARTS[field]
    return line_chart(
        title,
        Axis("triggers in one event loop", log=True),
        y_axis,
        _scale_series(summary, field),
        _scale_note(results),
        x_ticks=sorted(_sizes(summary)),
        tip=lambda label, x, y: (
            f"{label}, N={x:,.0f}: {y:.3f} {unit}" if y < 10 else f"{label}, N={x:,.0f}: {y:.0f} {unit}"
        ),
    )


#: CPU per status poll over the whole run against the number of triggers, per variant.
scale_cpu_chart = functools.partial(_scale_chart, "cpu_ms_per_poll")
#: Event-loop lag p99 over the whole run against the number of triggers, per variant.
scale_lag_chart = functools.partial(_scale_chart, "lag_p99_ms")


def burst_chart(results: Mapping[str, Any]) -> str:
    """The loop's longest stall while 1,000 triggers start at once, and over the whole run, per variant."""
    from benchmarks.triggerer_scale import BURST

    rows = (results.get("triggerer_scale") or {}).get("summary", {}).get(BURST, {})
    variants = [v for v in VARIANT_ORDER if v in rows]
    groups = [
        (title, [(VARIANT_NAMES[v], rows[v].get(field)) for v in variants])
        for title, field in (
            ("while they start", "start_lag_max_ms"),
            ("whole run", "lag_max_ms"),
        )
    ]
    return bar_chart(
        "1,000 triggers arriving at once: the event loop's longest stall",
        "longest loop stall (ms), median over rounds",
        groups,
        _scale_note(results),
    )


def poll_requests_chart(results: Mapping[str, Any]) -> str:
    """Status requests made so far by a job that keeps running for a day, per poll policy."""
    curves = (results.get("poll_economy") or {}).get("request_curves", {})
    return line_chart(
        "Status requests while one job runs for a day",
        Axis("hours since the job started"),
        Axis("status requests so far", log=True),
        [(name.replace("growing: poll_interval 30 s, ", ""), [(x, y) for x, y in c]) for name, c in curves.items()],
        "The provider's polling model (benchmarks/poll_economy.py), checked against the real trigger code.",
        x_ticks=[0, 4, 8, 12, 16, 20, 24],
        tip=lambda label, x, y: f"{label}: {y:,.0f} requests after {x:g} h",
    )


CHARTS: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "bench-scale-cpu.svg": scale_cpu_chart,
    "bench-scale-lag.svg": scale_lag_chart,
    "bench-burst.svg": burst_chart,
    "bench-poll-requests.svg": poll_requests_chart,
}


def write_charts(results: Mapping[str, Any], folder: Path = IMAGES) -> list[Path]:
    """
    Draw every chart from ``results`` into ``folder``; return the files written.

    :param results: the benchmark results by step name, as ``benchmarks.render`` loads them.
    :param folder: where the SVG files go (``docs/images``).
    """
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, draw in CHARTS.items():
        path = folder / name
        path.write_text(draw(results))
        written.append(path)
    return written
