"""`RouteTable`: public model name -> `ModelRoute`, the model's deployments and how one is picked.

Built once at start-up from `models:`; per request it only looks up and picks.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from rolegate.config.model import ModelConfig
from rolegate.errors import ModelNotFound
from rolegate.routing.deployment import Deployment
from rolegate.routing.select import Selector


@dataclass(frozen=True, slots=True)
class Pick:
    deployment: Deployment
    is_repeat: bool  # every available deployment was tried already: this one again


class ModelRoute:
    def __init__(self, config: ModelConfig, deployments: list[Deployment],
                 selector: Selector) -> None:
        self.config = config
        self.name = config.name
        self.deployments = deployments
        self._selector = selector

    def pick(self, now: float, tried: set[str]) -> Pick | None:
        """A deployment for the next attempt, preferring ones not tried yet; None when none is
        available (all cooling down or rate-limited)."""
        available = [d for d in self.deployments if d.is_available(now)]
        if not available:
            return None
        fresh = [d for d in available if d.id not in tried]
        return Pick(self._selector.choose(fresh or available), is_repeat=not fresh)

    def is_rate_limited(self, now: float) -> bool:
        """Every deployment that is not cooling down is resting from a 429 or at capacity."""
        closed = [d for d in self.deployments if d.breaker.is_available(now)]
        return bool(closed) and all(d.is_rate_limited(now) for d in closed)

    def is_wait_advised(self, now: float) -> bool:
        return all(d.is_wait_advised(now) for d in self.deployments
                   if d.breaker.is_available(now))

    def rate_limit_free_at(self, now: float) -> float:
        return min(d.rate_limit_free_at(now) for d in self.deployments)

    def breaker_free_at(self, now: float) -> float | None:
        times = [t for d in self.deployments if (t := d.breaker.available_at()) is not None]
        return min(times) if times else None


class RouteTable:
    def __init__(self, routes: Iterable[ModelRoute]) -> None:
        self._by_name = {route.name: route for route in routes}

    @property
    def model_names(self) -> list[str]:
        return list(self._by_name)

    def route(self, model: str) -> ModelRoute:
        route = self._by_name.get(model)
        if route is None:
            raise ModelNotFound(f"The model {model!r} does not exist.", param="model")
        return route
