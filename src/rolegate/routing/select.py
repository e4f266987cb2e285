"""Choosing one deployment among the available ones, per model strategy.

- `weighted-round-robin` (default): smooth weighted round-robin (as nginx does it), so traffic
  splits by `weight` and interleaves rather than bursting.
- `least-in-flight`: the deployment with the fewest requests in flight per unit of weight.
- `latency`: the lowest moving average (EWMA) of recent latency; a deployment not measured yet
  goes first, so every deployment gets measured.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Protocol

from rolegate.routing.deployment import Deployment


class Selector(Protocol):
    def choose(self, candidates: Sequence[Deployment]) -> Deployment: ...


class WeightedRoundRobin:
    """>>> WeightedRoundRobin().choose([a, b])  # with weights 3 and 1: a, a, b, a, a, a, b, a…"""

    def __init__(self) -> None:
        self._current: dict[str, float] = {}

    def choose(self, candidates: Sequence[Deployment]) -> Deployment:
        total = 0.0
        best: Deployment | None = None
        for deployment in candidates:
            current = self._current.get(deployment.id, 0.0) + deployment.weight
            self._current[deployment.id] = current
            total += deployment.weight
            if best is None or current > self._current[best.id]:
                best = deployment
        assert best is not None
        self._current[best.id] -= total
        return best


class LeastInFlight:
    def __init__(self, rng: random.Random) -> None:
        self._rng = rng

    def choose(self, candidates: Sequence[Deployment]) -> Deployment:
        load = min(d.in_flight / d.weight for d in candidates)
        return self._rng.choice([d for d in candidates if d.in_flight / d.weight == load])


class LowestLatency:
    def __init__(self, rng: random.Random) -> None:
        self._rng = rng

    def choose(self, candidates: Sequence[Deployment]) -> Deployment:
        unmeasured = [d for d in candidates if d.latency is None]
        if unmeasured:
            return self._rng.choice(unmeasured)
        return min(candidates, key=lambda d: d.latency or 0.0)


def build_selector(strategy: str, rng: random.Random) -> Selector:
    if strategy == "least-in-flight":
        return LeastInFlight(rng)
    if strategy == "latency":
        return LowestLatency(rng)
    return WeightedRoundRobin()
