"""`Deployment`: one upstream serving a model, with what the router knows about it right now:
its circuit breaker, requests in flight, recent latency, a 429 rest and its rpm/tpm budget."""

from __future__ import annotations

from typing import Any

from rolegate.config.model import DeploymentConfig, HealthConfig
from rolegate.providers.base import Provider
from rolegate.routing.capacity import MinuteWindow
from rolegate.routing.health import CircuitBreaker

LATENCY_WEIGHT = 0.3  # EWMA weight of the newest sample: recent latency counts, one outlier fades


class Deployment:
    def __init__(self, deployment_id: str, upstream_model: str, provider: Provider,
                 health: HealthConfig) -> None:
        config: DeploymentConfig = provider.config
        self.id = deployment_id
        self.upstream_model = upstream_model
        self.provider = provider
        self.config = config
        self.weight = config.weight
        self.in_flight = 0
        self.latency: float | None = None
        self.breaker = CircuitBreaker(failures=health.failures, cooldown=health.cooldown)
        self._rate_limit_rest = health.rate_limit_cooldown
        self._rested_until = 0.0
        self._is_rest_advised = False  # the upstream said how long (Retry-After)
        self._requests = MinuteWindow(config.rpm) if config.rpm else None
        self._tokens = MinuteWindow(config.tpm) if config.tpm else None

    def is_available(self, now: float) -> bool:
        return (self.breaker.is_available(now) and not self.is_rate_limited(now))

    def is_rate_limited(self, now: float) -> bool:
        """Resting after a 429, or its own rpm/tpm budget is spent."""
        return (now < self._rested_until
                or (self._requests is not None and self._requests.is_full(now))
                or (self._tokens is not None and self._tokens.is_full(now)))

    def rate_limit_free_at(self, now: float) -> float:
        free = max(now, self._rested_until)
        for window in (self._requests, self._tokens):
            if window is not None:
                free = max(free, window.free_at(now))
        return free

    def begin(self, now: float) -> None:
        """An attempt starts; `end` is called exactly once when its reply is done with."""
        self.in_flight += 1
        self.breaker.on_attempt(now)
        if self._requests is not None:
            self._requests.add(now, 1)

    def end(self, now: float, usage: dict[str, Any] | None = None) -> None:
        self.in_flight -= 1
        if self._tokens is not None and usage is not None:
            total = usage.get("total_tokens")
            if isinstance(total, int):
                self._tokens.add(now, total)

    def record_success(self, latency: float) -> None:
        self.breaker.record_success()
        self.latency = latency if self.latency is None else (
            LATENCY_WEIGHT * latency + (1 - LATENCY_WEIGHT) * self.latency)

    def record_failure(self, now: float) -> None:
        self.breaker.record_failure(now)

    def record_rate_limit(self, now: float, retry_after: float | None) -> None:
        """A 429: rest for what the upstream asked, else the configured rest. Not a failure:
        the deployment is healthy, only busy."""
        self.breaker.record_neutral()
        rest = retry_after if retry_after is not None else self._rate_limit_rest
        self._rested_until = max(self._rested_until, now + rest)
        self._is_rest_advised = retry_after is not None

    def is_wait_advised(self, now: float) -> bool:
        """Whether waiting for this deployment's rate limit to end is waiting for a known time:
        a Retry-After the upstream gave, or its own rpm/tpm window; not a guessed rest."""
        return now >= self._rested_until or self._is_rest_advised

    def record_neutral(self) -> None:
        self.breaker.record_neutral()
