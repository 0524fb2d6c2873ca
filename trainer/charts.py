"""Charts as inline SVG text, for a page that needs no script, no font file and no network: lines (learning curves,
the learning rate) and points (a swept value against the metric). Plain Python: no torch, no plotting library."""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape

WIDTH, HEIGHT = 470, 260
LEFT, RIGHT, TOP, BOTTOM = 62, 104, 30, 42  # room for the tick labels, the legend, the title and the axis label
COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")


@dataclass
class Series:
    name: str
    xs: list[float]
    ys: list[float]


def line_chart(title: str, series: list[Series], x_label: str, log_y: bool | None = None) -> str:
    """One chart with a line per series (a dot at each point: a one-epoch run still shows), and a legend. The y
    axis is logarithmic where asked, or (`log_y` None) where the values are positive and span 30x or more."""
    ys = [y for s in series for y in s.ys if _finite(y, False)]
    if log_y is None:
        log_y = bool(ys) and min(ys) > 0 and max(ys) / min(ys) >= 30
    points = [(x, y) for s in series for x, y in zip(s.xs, s.ys, strict=True) if _finite(y, log_y)]
    if not points:
        return _empty(title, "no finite values to draw")
    x_axis = Axis.of([x for x, _ in points], log=False, whole=all(float(x).is_integer() for x, _ in points))
    y_axis = Axis.of([y for _, y in points], log=log_y)
    parts = [_frame(title, x_axis, y_axis, x_label)]
    for i, s in enumerate(series):
        color = COLORS[i % len(COLORS)]
        drawn = [(x_axis.at(x), y_axis.at(y, flip=True)) for x, y in zip(s.xs, s.ys, strict=True) if _finite(y, log_y)]
        if len(drawn) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in drawn)
            parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{path}"/>')
        if len(drawn) <= 60:
            parts += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{color}"/>' for x, y in drawn]
        parts.append(_legend(i, s.name, color))
    return _svg(title, parts)


def points_chart(
    title: str, xs: list[float | str], ys: list[float], x_label: str, y_label: str, best: int | None = None
) -> str:
    """A point per trial: numbers on a (log, when they span 30x or more) axis, other values side by side."""
    finite = [(x, y) for x, y in zip(xs, ys, strict=True) if _finite(y, False)]
    if not finite:
        return _empty(title, "no trial has a value to draw")
    numbers = all(isinstance(x, int | float) and not isinstance(x, bool) for x, _ in finite)
    y_axis = Axis.of([y for _, y in finite], log=False)
    if numbers:
        values = [float(x) for x, _ in finite]  # type: ignore[arg-type]
        log = min(values) > 0 and max(values) / min(values) >= 30
        x_axis = Axis.of(values, log=log)
        frame = _frame(title, x_axis, y_axis, x_label, y_label)
    else:
        categories = list(dict.fromkeys(str(x) for x, _ in finite))
        x_axis = Axis(-0.5, len(categories) - 0.5, [], False)
        frame = _frame(title, x_axis, y_axis, x_label, y_label, categories=categories)
    parts = [frame]
    for i, (x, y) in enumerate(zip(xs, ys, strict=True)):
        if not _finite(y, False):
            continue
        cx = x_axis.at(float(x)) if numbers else x_axis.at(categories.index(str(x)))  # type: ignore[arg-type]
        color, size = ("#d62728", 5) if i == best else ("#1f77b4", 3.5)
        parts.append(
            f'<circle cx="{cx:.1f}" cy="{y_axis.at(y, flip=True):.1f}" r="{size}" fill="{color}" '
            f'fill-opacity="0.8"><title>{escape(str(x))}: {y:.4g}</title></circle>'
        )
    return _svg(title, parts)


@dataclass
class Axis:
    low: float
    high: float
    ticks: list[float]
    log: bool
    step: float = 1.0  # between the ticks: how many decimals their labels need

    @classmethod
    def of(cls, values: list[float], log: bool, whole: bool = False) -> Axis:
        """An axis over the values with about five round ticks; `whole`: the ticks are whole numbers (epochs)."""
        low, high = min(values), max(values)
        if log:
            low, high = math.log10(low), math.log10(high)
        if high - low < 1e-12:  # one value: a band around it
            pad = abs(low) * 0.1 or 1.0
            low, high = low - pad, high + pad
        if log:
            ticks = [float(t) for t in range(math.ceil(low), math.floor(high) + 1)]
            return cls(low, high, ticks if len(ticks) >= 2 else [low, high], True)
        step = _nice_step((high - low) / 4)
        if whole:
            step = max(1.0, round(step))
        first = math.floor(low / step) * step
        ticks = [first + i * step for i in range(int((high - first) / step) + 2)]
        if whole:  # epochs: the axis ends at the last one
            ticks = [t for t in ticks if t <= high] or ticks[:1]
        return cls(min(low, ticks[0]), max(high, ticks[-1]), ticks, False, step)

    def at(self, value: float, flip: bool = False) -> float:
        """The value's pixel: across the plot (x), or up it (y, with `flip`)."""
        v = math.log10(value) if self.log else value
        share = (v - self.low) / (self.high - self.low)
        if flip:
            return TOP + (1 - share) * (HEIGHT - TOP - BOTTOM)
        return LEFT + share * (WIDTH - LEFT - RIGHT)

    def label(self, tick: float) -> str:
        if self.log:
            return f"1e{int(tick)}" if float(tick).is_integer() else f"{10**tick:.2g}"
        if max(abs(t) for t in self.ticks) >= 1e6:
            return f"{tick:.3g}"
        decimals = len(f"{self.step:.10f}".rstrip("0").split(".")[1])  # as many as the step has: 0.025 -> 3
        return f"{tick:.{decimals}f}"


def _nice_step(rough: float) -> float:
    power = 10 ** math.floor(math.log10(rough))
    return next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= rough)


def _finite(y: float, log: bool) -> bool:
    return isinstance(y, int | float) and math.isfinite(y) and (y > 0 or not log)


def _frame(title: str, x: Axis, y: Axis, x_label: str, y_label: str = "", categories: list[str] | None = None) -> str:
    bottom, right = HEIGHT - BOTTOM, WIDTH - RIGHT
    parts = [f'<text x="{LEFT}" y="18" font-size="14" font-weight="bold">{escape(title)}</text>']
    for tick in y.ticks:
        py = y.at(10**tick if y.log else tick, flip=True)
        parts.append(f'<line x1="{LEFT}" x2="{right}" y1="{py:.1f}" y2="{py:.1f}" stroke="#e5e5e5"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{py + 4:.1f}" font-size="11" text-anchor="end">{y.label(tick)}</text>')
    labels = [(i, c) for i, c in enumerate(categories)] if categories is not None else None
    for i, tick in labels or [(None, t) for t in x.ticks]:
        px = x.at(float(i)) if labels is not None else x.at(10**tick if x.log else tick)  # type: ignore[arg-type]
        text = tick if labels is not None else x.label(tick)  # type: ignore[arg-type]
        parts.append(
            f'<text x="{px:.1f}" y="{bottom + 15}" font-size="11" text-anchor="middle">{escape(str(text))}</text>'
        )
    parts.append(
        f'<rect x="{LEFT}" y="{TOP}" width="{right - LEFT}" height="{bottom - TOP}" fill="none" stroke="#999"/>'
    )
    parts.append(
        f'<text x="{(LEFT + right) / 2}" y="{HEIGHT - 8}" font-size="12" text-anchor="middle">{escape(x_label)}</text>'
    )
    if y_label:
        parts.append(
            f'<text x="14" y="{(TOP + bottom) / 2}" font-size="12" text-anchor="middle" '
            f'transform="rotate(-90 14 {(TOP + bottom) / 2})">{escape(y_label)}</text>'
        )
    return "".join(parts)


def _legend(index: int, name: str, color: str) -> str:
    x, y = WIDTH - RIGHT + 10, TOP + 8 + 16 * index
    return (
        f'<rect x="{x}" y="{y - 9}" width="12" height="3" fill="{color}"/>'
        f'<text x="{x + 18}" y="{y - 4}" font-size="12">{escape(name)}</text>'
    )


def _empty(title: str, why: str) -> str:
    return _svg(
        title,
        [
            f'<text x="{LEFT}" y="18" font-size="14" font-weight="bold">{escape(title)}</text>',
            f'<text x="{LEFT}" y="{HEIGHT / 2}" font-size="12">{escape(why)}</text>',
        ],
    )


def _svg(title: str, parts: list[str]) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}" font-family="sans-serif">'
        + "".join(parts)
        + "</svg>"
    )
