"""One process spending limits from Redis, on a simulated clock tied to the real one, for the
tests of `limits.lease` with several processes: `python -m tests.support.lease_worker CONFIG`.

CONFIG (JSON): `url`, `prefix`, `lease` (a `limits.lease` mapping, or null for exact limits),
`limits` (a rule's limits), `start` (the real time both processes begin at), `base` (the
simulated time then), `steps`, `step` (simulated seconds per step), `real_step` (real seconds
per step), `tries` (acquires per step), `reserve` and `use` (tokens each request reserves and
uses). Prints the simulated times of the requests admitted, as JSON.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

from rolegate.config.model import LeaseConfig, LimitConfig, RateLimitsConfig
from rolegate.errors import RateLimited
from rolegate.limits.leases import LeasedLimiter
from rolegate.limits.limiter import Limiter, Reservation
from rolegate.limits.quota import quotas_of
from rolegate.limits.redis import RedisLimiter


async def run(config: dict[str, Any]) -> list[float]:
    now = [config["base"]]
    exact = RedisLimiter(RateLimitsConfig(backend="redis", url=config["url"],
                                          prefix=config["prefix"]))
    limiter: Limiter = exact if config["lease"] is None else LeasedLimiter(
        exact, LeaseConfig.model_validate(config["lease"]), lambda: now[0])
    limits = LimitConfig.model_validate(config["limits"])
    reservation = Reservation(tokens=config["reserve"])
    admitted: list[float] = []
    await asyncio.sleep(max(0.0, config["start"] - time.time()))
    for step in range(config["steps"]):
        now[0] = config["base"] + step * config["step"]
        for _ in range(config["tries"]):
            try:
                lease = await limiter.acquire(quotas_of(limits, "shared", now[0]), now[0],
                                              reservation)
            except RateLimited:
                continue
            admitted.append(now[0])
            limiter.settle(lease, config["use"], 0.0)
        await asyncio.sleep(max(0.0, config["start"] + (step + 1) * config["real_step"]
                                - time.time()))
    await limiter.close()
    return admitted


if __name__ == "__main__":
    print(json.dumps(asyncio.run(run(json.loads(sys.argv[1])))))
