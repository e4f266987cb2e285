"""`line_chart`: the geometry of a line chart (one line per series over time buckets), for the
console's templates to draw as inline SVG (`templates/chart.html`).

Only numbers and coordinates are computed here; every name (a model's, a principal's) reaches
the page through the template, which escapes it, so a series named `<script>` is text in the
SVG's `<title>`, its legend and its data table alike. Lines differ by colour and by dash
pattern, so they can be told apart without colour.

>>> chart = line_chart("requests", "Requests", "requests", [0.0, 60.0],
...                    {"gpt-4o": [3, 5]}, label=lambda at: f"{at:.0f}")
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

WIDTH, HEIGHT = 640, 240
LEFT, RIGHT, TOP, BOTTOM = 56, 36, 12, 28  # room for the axes' labels
# Dark enough for 3:1 against white (WCAG 1.4.11, graphical objects); told apart by dashes too.
COLOURS = ("#0b4fa3", "#b3400b", "#0a6b2d", "#8a2a6b", "#444444", "#5a3d99")
DASHES = ("", "6 3", "2 3", "8 3 2 3", "4 4", "1 2")
Y_TICKS = 5  # the top is 1, 2, 2.5 or 5 times a power of ten: round steps
X_TICKS = 6


@dataclass(frozen=True, slots=True)
class Line:
    name: str
    colour: str
    dash: str
    points: str  # SVG polyline points: "x,y x,y ..."
    cells: tuple[str, ...]  # the values as the data table shows them ("" where there is none)


@dataclass(frozen=True, slots=True)
class Tick:
    at: float  # pixel coordinate on its axis
    label: str


@dataclass(frozen=True, slots=True)
class Chart:
    id: str
    title: str
    unit: str
    labels: tuple[str, ...]  # one per bucket: the data table's rows
    lines: tuple[Line, ...]
    y_ticks: tuple[Tick, ...]
    x_ticks: tuple[Tick, ...]
    summary: str  # the text alternative: what the chart shows, in a sentence
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    bottom: int = HEIGHT - BOTTOM
    right: int = WIDTH - RIGHT


def line_chart(chart_id: str, title: str, unit: str, buckets: Sequence[float],
               series: Mapping[str, Sequence[float | None]], *,
               label: Callable[[float], str]) -> Chart:
    """A chart of `series` (name -> one value per bucket, None where there is none) over
    `buckets` (their start times), each labelled with `label`."""
    peak = max((value for values in series.values() for value in values if value is not None),
               default=0.0)
    top = _nice_ceiling(peak)
    lines = tuple(
        Line(name, COLOURS[index % len(COLOURS)], DASHES[index % len(DASHES)],
             _points(values, top),
             tuple("" if value is None else _number(value) for value in values))
        for index, (name, values) in enumerate(series.items()))
    step = max(1, len(buckets) // X_TICKS)
    x_ticks = tuple(Tick(_x(index, len(buckets)), label(at))
                    for index, at in enumerate(buckets) if index % step == 0)
    y_ticks = tuple(Tick(_y(top * n / Y_TICKS, top), _number(top * n / Y_TICKS))
                    for n in range(Y_TICKS + 1))
    summary = (f"{title}: {len(series)} series over {len(buckets)} intervals"
               + (f" from {label(buckets[0])} to {label(buckets[-1])}" if buckets else "")
               + f"; the highest value is {_number(peak)} {unit}.")
    return Chart(chart_id, title, unit, tuple(label(at) for at in buckets), lines, y_ticks,
                 x_ticks, summary)


def _points(values: Sequence[float | None], top: float) -> str:
    return " ".join(f"{_x(index, len(values)):.1f},{_y(value, top):.1f}"
                    for index, value in enumerate(values) if value is not None)


def _x(index: int, count: int) -> float:
    span = WIDTH - LEFT - RIGHT
    return LEFT + (span * index / (count - 1) if count > 1 else span / 2)


def _y(value: float, top: float) -> float:
    span = HEIGHT - TOP - BOTTOM
    return TOP + span * (1 - (value / top if top else 0))


def _nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 times a power of ten at or above `value` (1 for 0)."""
    if value <= 0:
        return 1.0
    power = 10 ** (len(str(int(value))) - 1) if value >= 1 else 1.0
    while power > value:
        power /= 10
    for factor in (1, 2, 2.5, 5, 10):
        if factor * power >= value:
            return factor * power
    return 10 * power


def _number(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 or value == int(value) else f"{value:,.2f}"
