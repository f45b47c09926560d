"""Chart geometry for server-rendered SVG: numbers in, rectangles, polylines and ticks out.

Pure: no Django, no database, no HTTP. Labels are made by the caller (localised) and passed in;
the template draws the result, and the page's CSS colours it (no inline styles, no script).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

WIDTH, HEIGHT = 720, 230
LEFT, RIGHT, TOP, BOTTOM = 64, 10, 12, 30


@dataclass(frozen=True)
class Series:
    key: str  # CSS modifier: chart__s--<key>
    label: str
    values: Sequence[float | None]


@dataclass(frozen=True)
class Rect:
    x: float
    y: float
    width: float
    height: float
    key: str
    title: str


@dataclass(frozen=True)
class Line:
    key: str
    points: str  # "x,y x,y …" for <polyline>; empty buckets are skipped
    dots: tuple[tuple[float, float, str], ...]


@dataclass
class Chart:
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right: int = WIDTH - RIGHT
    top: int = TOP
    bottom: int = HEIGHT - BOTTOM
    rects: list[Rect] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)
    y_ticks: list[tuple[float, str]] = field(default_factory=list)
    x_ticks: list[tuple[float, str]] = field(default_factory=list)
    empty: bool = True

    @property
    def middle(self) -> tuple[float, float]:
        return ((self.left + self.right) / 2, (self.top + self.bottom) / 2)


def nice_step(maximum: float, ticks: int = 4) -> float:
    """A 1, 2 or 5 × 10ⁿ step so that ``ticks`` steps cover ``maximum``."""
    if maximum <= 0:
        return 1.0
    raw = maximum / ticks
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        if factor * power >= raw:
            return factor * power
    return 10 * power


def _frame(count: int, maximum: float, x_labels: Sequence[str], label_every: int,
           y_format: Callable[[float], str], integer: bool) -> tuple[Chart, float, float]:
    chart = Chart()
    step = nice_step(maximum)
    if integer:
        step = max(1.0, math.ceil(step))
    top_value = step * max(1, math.ceil(maximum / step)) if maximum > 0 else step * 4
    plot_h = chart.bottom - chart.top
    slot = (chart.right - chart.left) / max(count, 1)
    value = 0.0
    while value <= top_value + 1e-9:
        chart.y_ticks.append((chart.bottom - plot_h * value / top_value, y_format(value)))
        value += step
    for index, label in enumerate(x_labels):
        if label and index % label_every == 0:
            chart.x_ticks.append((chart.left + slot * (index + 0.5), label))
    return chart, top_value, slot


def stacked_bars(series: Sequence[Series], x_labels: Sequence[str], *, label_every: int,
                 y_format: Callable[[float], str], overlay: Sequence[Series] = (),
                 titles: Sequence[str] | None = None) -> Chart:
    """Bars stacked bottom-up in ``series`` order; ``overlay`` series drawn as lines on top."""
    count = len(x_labels)
    totals = [sum((s.values[i] or 0) for s in series) for i in range(count)]
    peaks = [max((v or 0) for v in s.values) for s in overlay if s.values]
    maximum = max([*totals, *peaks, 0])
    chart, top_value, slot = _frame(count, maximum, x_labels, label_every, y_format, True)
    plot_h = chart.bottom - chart.top
    gap = min(2.0, slot * 0.2)
    for index in range(count):
        base = 0.0
        for s in series:
            value = s.values[index] or 0
            if not value:
                continue
            y_low = chart.bottom - plot_h * base / top_value
            base += value
            y_high = chart.bottom - plot_h * base / top_value
            title = f"{titles[index] if titles else x_labels[index]} · {s.label}: {y_format(value)}"
            chart.rects.append(Rect(x=round(chart.left + slot * index + gap / 2, 2),
                                    y=round(y_high, 2), width=round(slot - gap, 2),
                                    height=round(max(y_low - y_high, 0.5), 2), key=s.key,
                                    title=title))
    chart.lines = [_line(s, chart, top_value, slot, x_labels, titles, y_format) for s in overlay]
    chart.empty = maximum <= 0
    return chart


def lines(series: Sequence[Series], x_labels: Sequence[str], *, label_every: int,
          y_format: Callable[[float], str], titles: Sequence[str] | None = None) -> Chart:
    values = [v for s in series for v in s.values if v is not None]
    maximum = max([*values, 0])
    chart, top_value, slot = _frame(len(x_labels), maximum, x_labels, label_every, y_format,
                                    False)
    chart.lines = [_line(s, chart, top_value, slot, x_labels, titles, y_format) for s in series]
    chart.empty = not values
    return chart


def _line(s: Series, chart: Chart, top_value: float, slot: float, x_labels: Sequence[str],
          titles: Sequence[str] | None, y_format: Callable[[float], str]) -> Line:
    plot_h = chart.bottom - chart.top
    points, dots = [], []
    for index, value in enumerate(s.values):
        if value is None:
            continue
        x = round(chart.left + slot * (index + 0.5), 2)
        y = round(chart.bottom - plot_h * value / top_value, 2)
        points.append(f"{x},{y}")
        label = titles[index] if titles else x_labels[index]
        dots.append((x, y, f"{label} · {s.label}: {y_format(value)}"))
    return Line(key=s.key, points=" ".join(points), dots=tuple(dots))
