"""Line charts as inline SVG, drawn in Python: readable with JavaScript off.

A chart is a plot area with grid lines at round values, one ``<polyline>``
per series (one point per value, in order), a dot with a ``<title>`` (the
browser's own tooltip) on each point of short series, and optional
vertical marks (epoch ends). Each polyline carries its steps and values as
``data-x`` and ``data-v`` for the page's optional hover read-out.
"""

import dataclasses
import math
from html import escape

WIDTH, HEIGHT = 560, 250
LEFT, RIGHT, TOP, BOTTOM = 62, 16, 24, 42  # the top margin holds the marks' labels
DOTS_UP_TO = 30  # series longer than this get no dots (the line alone is readable)


@dataclasses.dataclass
class Series:
    label: str
    xs: list
    ys: list
    colour: str
    dashed: bool = False


def _plain(v):
    return f"{v:.4g}"


@dataclasses.dataclass
class Axis:
    """An axis: its title, how its tick labels read (default: as round as the ticks) and
    its values in tooltips (default 4 digits), bounds it must show whatever the data."""

    title: str
    ticks: callable = None
    value: callable = _plain
    low: float = None
    high: float = None


def nice_ticks(low, high, count=5):
    """Round values covering ``[low, high]``, about ``count`` intervals: ``(ticks, step)``."""
    if not high > low:
        low, high = low - 0.5 * (abs(low) or 1), high + 0.5 * (abs(high) or 1)
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw * 0.999)
    first, last = math.floor(low / step + 1e-9), math.ceil(high / step - 1e-9)
    return [i * step for i in range(first, last + 1)], step


def tick_format(step):
    """How tick labels ``step`` apart read: enough decimals, scientific when tiny."""
    if step < 1e-3:
        return lambda v: f"{v:.1e}" if v else "0"
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    if round(step / 10 ** -decimals, 6) % 1:  # 2.5 x 10^k needs one digit more
        decimals += 1
    return lambda v: f"{v:,.{decimals}f}"


def _bounds(values, axis):
    finite = [v for v in values if math.isfinite(v)]
    low = min(finite + ([axis.low] if axis.low is not None else []), default=0.0)
    high = max(finite + ([axis.high] if axis.high is not None else []), default=1.0)
    return low, high


def _scale(low, high, start, end):
    span = high - low
    return lambda v: start + (v - low) / span * (end - start)


def line_chart(series, x_axis, y_axis, marks=(), label="chart"):
    """An ``<svg>`` of ``series`` (``Series``) against ``x_axis`` and ``y_axis`` (``Axis``);
    ``marks``: ``(x, text)`` vertical lines. ``label`` names the picture for screen readers."""
    xticks, xstep = nice_ticks(*_bounds([x for s in series for x in s.xs], x_axis))
    yticks, ystep = nice_ticks(*_bounds([y for s in series for y in s.ys], y_axis))
    sx = _scale(xticks[0], xticks[-1], LEFT, WIDTH - RIGHT)
    sy = _scale(yticks[0], yticks[-1], HEIGHT - BOTTOM, TOP)
    parts = [(f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
              f'aria-label="{escape(label)}">'),
             *_grid(xticks, yticks, sx, sy, x_axis.ticks or tick_format(xstep),
                    y_axis.ticks or tick_format(ystep)),
             *_marks(marks, sx, xticks),
             *_axis_titles(x_axis.title, y_axis.title)]
    for s in series:
        parts.extend(_series(s, sx, sy, y_axis.value))
    parts.append(f'<line class="guide" x1="0" x2="0" y1="{TOP}" y2="{HEIGHT - BOTTOM}"/>')
    parts.append("</svg>")
    return "\n".join(parts)


def _grid(xticks, yticks, sx, sy, xfmt, yfmt):
    bottom = HEIGHT - BOTTOM
    for v in yticks:
        y = sy(v)
        yield f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
        yield f'<text class="tick" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{escape(yfmt(v))}</text>'
    for v in xticks:
        x = sx(v)
        yield f'<line class="tickmark" x1="{x:.1f}" x2="{x:.1f}" y1="{bottom}" y2="{bottom + 4}"/>'
        yield f'<text class="tick" x="{x:.1f}" y="{bottom + 17}" text-anchor="middle">{escape(xfmt(v))}</text>'
    yield f'<line class="axis" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{bottom}" y2="{bottom}"/>'
    yield f'<line class="axis" x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{bottom}"/>'


def _marks(marks, sx, xticks):
    """Vertical lines at ``marks``, labelled, at most about 12 labels."""
    every = max(1, math.ceil(len(marks) / 12))
    for i, (x, text) in enumerate(marks):
        if not xticks[0] <= x <= xticks[-1]:
            continue
        px = sx(x)
        yield f'<line class="mark" x1="{px:.1f}" x2="{px:.1f}" y1="{TOP}" y2="{HEIGHT - BOTTOM}"/>'
        if i % every == every - 1 or i == len(marks) - 1:
            yield (f'<text class="marktext" x="{px:.1f}" y="{TOP - 7}" '
                   f'text-anchor="middle">{escape(text)}</text>')


def _axis_titles(x_title, y_title):
    middle = (TOP + HEIGHT - BOTTOM) / 2
    yield (f'<text class="title" x="{(LEFT + WIDTH - RIGHT) / 2:.0f}" y="{HEIGHT - 6}" '
           f'text-anchor="middle">{escape(x_title)}</text>')
    yield (f'<text class="title" x="14" y="{middle:.0f}" text-anchor="middle" '
           f'transform="rotate(-90 14 {middle:.0f})">{escape(y_title)}</text>')


def _number(v):
    return f"{v:g}" if float(v) != int(v) else str(int(v))


def _series(s, sx, sy, value):
    """The polyline of one series and, when short, its dots with tooltips."""
    points = [(x, y) for x, y in zip(s.xs, s.ys) if math.isfinite(y)]
    if not points:
        return
    coords = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in points)
    dash = ' stroke-dasharray="6 4"' if s.dashed else ""
    yield (f'<polyline class="series" points="{coords}" stroke="{s.colour}"{dash} '
           f'data-label="{escape(s.label)}" data-x="{" ".join(_number(x) for x, _ in points)}" '
           f'data-v="{escape(" ".join(value(y).replace(" ", "") for _, y in points))}"/>')
    if len(points) <= DOTS_UP_TO:
        for x, y in points:
            yield (f'<circle class="dot" cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="2.6" '
                   f'fill="{s.colour}"><title>{escape(s.label)}: {escape(value(y))} '
                   f'at step {_number(x)}</title></circle>')
