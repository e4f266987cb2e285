"""What the production shape adds to a request, in-process: `Metering` with exact Redis limits
and usage records (`metering.py`; `limits` and `production` need the local Redis). Each round
runs 2,000 requests, 4 at a time; `plain` is what every request pays without limits or
accounting.

Run with `./dev pytest bench/micro/test_metering.py`; for instruction counts, run
`python -m bench.micro.metering` under callgrind (see its docstring).
"""

from __future__ import annotations

import asyncio

import pytest

from bench.micro.metering import SHAPES, run

REQUESTS = 2_000


@pytest.mark.parametrize("shape", SHAPES)
def test_metered_requests(benchmark, shape: str) -> None:
    per_request: list[float] = []

    def metered() -> None:
        cpu, _trips = asyncio.run(run(shape, REQUESTS, 4))
        per_request.append(cpu)

    benchmark.extra_info["per"] = f"{REQUESTS} requests"
    benchmark.pedantic(metered, rounds=3, iterations=1)
    benchmark.extra_info["cpu_us_per_request"] = round(min(per_request) * 1e6, 1)
