"""A small inline-SVG chart renderer for the monitoring report: grouped bars and a line with its
band. Pure string building (no dependency, no script, nothing fetched); every text is escaped."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

FONT = 'font-family="system-ui,sans-serif" font-size="11"'
AXIS = "#6b7280"
GRID = "#e5e7eb"
LEFT, RIGHT, TOP, BOTTOM = 44, 10, 22, 34


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float]
    color: str


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    low: float | None = None
    high: float | None = None
    note: str = ""


def fmt(value: float, digits: int = 3) -> str:
    """A short label: 3 significant digits, no exponent for everyday magnitudes."""
    if value == 0 or not math.isfinite(value):
        return "0" if value == 0 else str(value)
    if 1e-3 <= abs(value) < 1e6:
        return f"{value:.{digits}g}" if abs(value) < 10**digits else f"{value:.0f}"
    return f"{value:.2e}"


def nice_ticks(lo: float, hi: float, count: int = 4) -> list[float]:
    """About `count` round values covering [lo, hi]."""
    if not hi > lo:
        hi = lo + 1.0
    raw = (hi - lo) / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.floor(lo / step) * step
    return [first + i * step for i in range(math.ceil((hi - first) / step) + 1)]


def _text(x: float, y: float, body: str, anchor: str = "middle", color: str = AXIS) -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" fill="{color}">{escape(body)}</text>'


def _rule(width: int, y: float, color: str, extra: str = "") -> str:
    return f'<line x1="{LEFT}" x2="{width - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="{color}"{extra}/>'


def _open(width: int, height: int, label: str) -> str:
    return (
        f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'style="max-width:100%;height:auto" role="img" aria-label="{escape(label)}" {FONT}>'
        f"<title>{escape(label)}</title>"
    )


def _y_axis(ticks: list[float], scale: Callable[[float], float], width: int, as_percent: bool) -> list[str]:
    out = []
    for tick in ticks:
        y = scale(tick)
        out.append(_rule(width, y, GRID))
        label = f"{tick * 100:.3g}%" if as_percent else fmt(tick)
        out.append(_text(LEFT - 4, y + 4, label, "end"))
    return out


def _legend(series: Sequence[tuple[str, str]], width: int) -> list[str]:
    out, x = [], float(width - RIGHT)
    for name, color in reversed(series):
        x -= 8 + 6.2 * len(name)
        out.append(f'<rect x="{x:.1f}" y="6" width="9" height="9" fill="{color}"/>')
        out.append(_text(x + 12, 14, name, "start"))
        x -= 14
    return out


def bar_chart(
    groups: Sequence[str],
    series: Sequence[Series],
    *,
    label: str,
    edges: Sequence[str] | None = None,
    width: int = 380,
    height: int = 190,
) -> str:
    """Side-by-side bars of shares (0..1) per group. With `edges` (one fewer than groups) the
    groups are adjacent bins and the edges are labelled between them, as on a histogram axis."""
    top = max((v for s in series for v in s.values), default=0.0)
    ticks = nice_ticks(0.0, max(top, 0.01), 4)
    plot_h = height - TOP - BOTTOM
    span = ticks[-1] or 1.0

    def scale(v: float) -> float:
        return TOP + plot_h * (1 - v / span)

    parts = [_open(width, height, label), *_y_axis(ticks, scale, width, True)]
    slot = (width - LEFT - RIGHT) / max(len(groups), 1)
    bar = slot * (0.9 if edges is not None else 0.8) / max(len(series), 1)
    for g, group in enumerate(groups):
        x0 = LEFT + g * slot + (slot - bar * len(series)) / 2
        for s, ser in enumerate(series):
            value = ser.values[g]
            y = scale(value)
            parts.append(
                f'<rect x="{x0 + s * bar:.1f}" y="{y:.1f}" width="{max(bar - 1, 1):.1f}" '
                f'height="{TOP + plot_h - y:.1f}" fill="{ser.color}"><title>{escape(ser.name)} · '
                f"{escape(group)}: {value * 100:.1f}%</title></rect>"
            )
        if edges is None:
            short = group if len(group) <= 12 else group[:11] + "…"
            parts.append(_text(LEFT + (g + 0.5) * slot, height - BOTTOM + 14, short))
    if edges is not None:
        every = max(1, math.ceil(len(edges) / 7))
        for e, edge in enumerate(edges):
            if e % every == 0:
                parts.append(_text(LEFT + (e + 1) * slot, height - BOTTOM + 14, edge))
    parts.append(
        f'<line x1="{LEFT}" x2="{width - RIGHT}" y1="{TOP + plot_h}" y2="{TOP + plot_h}" stroke="{AXIS}"/>'
    )
    parts += _legend([(s.name, s.color) for s in series], width)
    return "".join(parts) + "</svg>"


def _y_range(
    points: Sequence[Point], reference: float | None, clip: tuple[float, float] | None
) -> tuple[float, float]:
    values = [v for p in points for v in (p.y, p.low, p.high) if v is not None and math.isfinite(v)]
    values += [reference] if reference is not None else []
    lo, hi = min(values), max(values)
    pad = (hi - lo) * 0.1 or abs(hi) * 0.1 or 0.1
    lo, hi = lo - pad, hi + pad
    if clip is not None and max(lo, clip[0]) < min(hi, clip[1]):
        lo, hi = max(lo, clip[0]), min(hi, clip[1])
    return lo, hi


def line_chart(
    points: Sequence[Point],
    *,
    label: str,
    x_labels: Sequence[tuple[float, str]],
    reference: float | None = None,
    reference_name: str = "registered",
    clip: tuple[float, float] | None = None,
    x_range: tuple[float, float] | None = None,
    color: str = "#2563eb",
    width: int = 1100,
    height: int = 240,
) -> str:
    """A line through `points` (x ascending) with its low-high band shaded, and a dashed horizontal
    line at `reference`. Needs at least one point."""
    lo, hi = _y_range(points, reference, clip)
    ticks = [t for t in nice_ticks(lo, hi, 4) if lo <= t <= hi] or [lo, hi]
    x_lo, x_hi = x_range or (min(p.x for p in points), max(p.x for p in points))
    plot_w, plot_h = width - LEFT - RIGHT - 8, height - TOP - BOTTOM

    def sx(x: float) -> float:
        return LEFT + 4 + (plot_w * (x - x_lo) / (x_hi - x_lo) if x_hi > x_lo else plot_w / 2)

    def sy(v: float) -> float:
        return TOP + plot_h * (1 - (min(max(v, lo), hi) - lo) / (hi - lo))

    parts = [_open(width, height, label), *_y_axis(ticks, sy, width, False)]
    banded = [p for p in points if p.low is not None and p.high is not None]
    if banded:
        upper = [f"{sx(p.x):.1f},{sy(p.high):.1f}" for p in banded]  # type: ignore[arg-type]
        lower = [f"{sx(p.x):.1f},{sy(p.low):.1f}" for p in reversed(banded)]  # type: ignore[arg-type]
        parts.append(f'<polygon points="{" ".join(upper + lower)}" fill="{color}" fill-opacity="0.15"/>')
    line = " ".join(f"{sx(p.x):.1f},{sy(p.y):.1f}" for p in points)
    parts.append(f'<polyline points="{line}" fill="none" stroke="{color}" stroke-width="2"/>')
    for p in points:
        parts.append(
            f'<circle cx="{sx(p.x):.1f}" cy="{sy(p.y):.1f}" r="3" fill="{color}">'
            f"<title>{escape(p.note)}</title></circle>"
        )
    if reference is not None:
        y = sy(reference)
        parts.append(_rule(width, y, "#b45309", ' stroke-dasharray="5 4" stroke-width="1.5"'))
        parts.append(_text(width - RIGHT - 2, y - 4, f"{reference_name} {fmt(reference)}", "end", "#b45309"))
    for x, text in x_labels:
        at = sx(x)
        anchor = "end" if at > width - RIGHT - 40 else "start" if at < LEFT + 40 else "middle"
        parts.append(_text(at, height - BOTTOM + 16, text, anchor))
    parts.append(
        f'<line x1="{LEFT}" x2="{width - RIGHT}" y1="{TOP + plot_h}" y2="{TOP + plot_h}" stroke="{AXIS}"/>'
    )
    return "".join(parts) + "</svg>"
