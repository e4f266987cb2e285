"""The console's chart geometry and the overview's percentiles."""

from __future__ import annotations

import pytest

from rolegate.console.charts import HEIGHT, LEFT, RIGHT, TOP, WIDTH, line_chart
from rolegate.console.overview import percentile


def test_a_line_spans_the_plot_and_its_peak_reaches_a_round_top():
    chart = line_chart("c", "Requests", "requests", [0, 60, 120], {"m": [0, 7, None]},
                       label=str)

    (line,) = chart.lines
    points = [tuple(map(float, point.split(","))) for point in line.points.split()]
    assert points[0] == (LEFT, HEIGHT - 28)  # zero sits on the x axis
    assert points[1][0] == pytest.approx(LEFT + (WIDTH - LEFT - RIGHT) / 2)
    assert len(points) == 2  # no point where there is no value
    assert [tick.label for tick in chart.y_ticks][-1] == "10"  # 7 rounds up to 10
    assert chart.y_ticks[-1].at == TOP
    assert line.cells == ("0", "7", "")
    assert "highest value is 7 requests" in chart.summary


@pytest.mark.parametrize(("values", "fraction", "expected"), [
    ([], 0.5, None), ([5.0], 0.95, 5.0), ([4.0, 1.0, 3.0, 2.0], 0.5, 2.0),
    ([float(n) for n in range(1, 101)], 0.95, 95.0),
], ids=["none", "one", "median-of-four", "p95-of-hundred"])
def test_percentiles_are_nearest_rank(values, fraction, expected):
    assert percentile(values, fraction) == expected


def test_usage_buckets_are_hours_then_days_and_never_too_many():
    from rolegate.console.usage import MAX_BUCKETS, bucket_width

    assert bucket_width(86400) == 3600
    assert bucket_width(7 * 86400) == 86400
    assert 365 * 86400 / bucket_width(365 * 86400) <= MAX_BUCKETS
    assert 3650 * 86400 / bucket_width(3650 * 86400) <= MAX_BUCKETS


def test_the_usage_chart_draws_the_biggest_groups_and_sums_the_rest():
    from rolegate.console.usage import CHARTED, OTHER, usage_chart

    rows = [{"bucket": 0, "model": f"m{n}", "total_tokens": n * 10, "requests": 1}
            for n in range(1, CHARTED + 3)]

    chart = usage_chart("c", "Tokens", "tokens", "model", [0.0, 3600.0], 3600, rows)

    names = [line.name for line in chart.lines]
    assert names[-1] == OTHER and len(names) == CHARTED + 1
    assert "m1" not in names and "m2" not in names  # the two smallest, summed
    assert chart.lines[-1].cells == ("30", "0")
