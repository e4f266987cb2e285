"""`GatewayMetrics`: the Prometheus metrics a request touches, on a registry `app.py` builds.

Every label value comes from a bounded set: route groups, configured model and deployment names,
rule names, error codes and HTTP statuses. A model name a caller sent that is not configured is
counted as `_unknown`, never as the caller's string, so no caller can grow the label space. No
metric carries a subject, client or key label, for the same reason.

Children whose labels are known at start-up (per route group, per deployment, per model) are
bound here, once; a request then costs a dict lookup and an increment per metric.

>>> metrics = GatewayMetrics(CollectorRegistry(), models={"gpt-4o": ["gpt-4o"]})
>>> metrics.observe_request("inference", "gpt-4o", 200, 0.42)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import generate_latest

from rolegate.api.routes import RouteGroup

UNKNOWN = "_unknown"  # a model the caller named that is not configured
NONE = "_none"        # no route group (unauthenticated, unknown path), no model, no rule

ROUTE_GROUPS = (*(group.value for group in RouteGroup), "public", NONE)
# From half a millisecond (a cached decision, a health check) to five minutes (a long stream).
DURATION_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                    2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, float("inf"))
UPSTREAM_OUTCOMES = ("success", "client_error", "rate_limited", "server_error", "error",
                     "timeout", "cancelled")
LIMIT_CODES = ("requests_per_minute", "tokens_per_minute", "tokens_per_day", "budget_exceeded")


class DeploymentMetrics:
    """The bound children of one deployment: attempts by outcome, latency, time to first byte."""

    __slots__ = ("_attempts", "latency", "first_byte")

    def __init__(self, attempts: Counter, latency: Histogram, first_byte: Histogram,
                 model: str, deployment: str) -> None:
        self._attempts = {outcome: attempts.labels(model, deployment, outcome)
                          for outcome in UPSTREAM_OUTCOMES}
        self.latency = latency.labels(model, deployment)
        self.first_byte = first_byte.labels(model, deployment)

    def count_attempt(self, outcome: str) -> None:
        self._attempts[outcome].inc()


class GatewayMetrics:
    def __init__(self, registry: CollectorRegistry, *, models: Mapping[str, Sequence[str]],
                 rules: Iterable[str] = ()) -> None:
        """`models`: each configured model name and the ids of its deployments."""
        self.registry = registry
        self._models = frozenset(models)
        self._requests = Counter("rolegate_requests", "Requests answered, by route group, "
                                 "configured model and HTTP status.",
                                 ("route_group", "model", "status"), registry=registry)
        self._request_counts: dict[tuple[str, str, int], Any] = {}
        duration = Histogram("rolegate_request_duration_seconds", "Time from the request's "
                             "arrival to the last byte of its response.", ("route_group",),
                             buckets=DURATION_BUCKETS, registry=registry)
        self._durations = {group: duration.labels(group) for group in ROUTE_GROUPS}
        authn = Counter("rolegate_authn_failures", "Requests refused with 401, by error code.",
                        ("code",), registry=registry)
        self._authn = authn
        self._authn_failures: dict[str, Any] = {}
        decisions = Counter("rolegate_authz_decisions", "Authorization decisions, by decision "
                            "and the rule that granted (or `_none`).", ("decision", "rule"),
                            registry=registry)
        self._decisions = {(decision, rule): decisions.labels(decision, rule)
                           for decision in ("allow", "deny") for rule in (*rules, NONE)}
        self._decisions_family = decisions
        limited = Counter("rolegate_rate_limited", "Requests refused by the gateway's own "
                          "limits, by the limit that was spent.", ("limit",), registry=registry)
        self._limited = {code: limited.labels(code) for code in LIMIT_CODES}
        tokens = Counter("rolegate_tokens", "Tokens the upstreams reported, by model and kind.",
                         ("model", "kind"), registry=registry)
        self._tokens = {name: (tokens.labels(name, "prompt"), tokens.labels(name, "completion"))
                        for name in self._models}
        self._deployments = self._deployment_children(registry, models)

    def _deployment_children(self, registry: CollectorRegistry, models: Mapping[str, Sequence[str]]
                             ) -> dict[tuple[str, str], DeploymentMetrics]:
        labels = ("model", "deployment")
        attempts = Counter("rolegate_upstream_attempts", "Upstream attempts, by outcome.",
                           (*labels, "outcome"), registry=registry)
        latency = Histogram("rolegate_upstream_latency_seconds", "Time from sending an upstream "
                            "request to the end of its reply (for a stream: the stream's end).",
                            labels, buckets=DURATION_BUCKETS, registry=registry)
        first_byte = Histogram("rolegate_upstream_first_byte_seconds", "Streams: time from "
                               "sending an upstream request to its first chunk.", labels,
                               buckets=DURATION_BUCKETS, registry=registry)
        return {(model, deployment): DeploymentMetrics(attempts, latency, first_byte, model,
                                                       deployment)
                for model, deployments in models.items() for deployment in deployments}

    def model_label(self, model: str | None) -> str:
        if model is None:
            return NONE
        return model if model in self._models else UNKNOWN

    def observe_request(self, route_group: str, model: str | None, status: int,
                        seconds: float) -> None:
        key = (route_group, self.model_label(model), status)
        child = self._request_counts.get(key)
        if child is None:  # bounded: route groups x configured models x statuses
            child = self._request_counts[key] = self._requests.labels(*key)
        child.inc()
        self._durations[route_group].observe(seconds)

    def count_authn_failure(self, code: str) -> None:
        child = self._authn_failures.get(code)
        if child is None:  # codes are the gateway's own, a fixed set
            child = self._authn_failures[code] = self._authn.labels(code)
        child.inc()

    def count_decision(self, is_allowed: bool, rule: str | None) -> None:
        key = ("allow" if is_allowed else "deny", rule or NONE)
        child = self._decisions.get(key)
        if child is None:  # a rule name outside the configured policy (built-in denials)
            child = self._decisions[key] = self._decisions_family.labels(*key)
        child.inc()

    def count_rate_limited(self, limit: str) -> None:
        child = self._limited.get(limit)
        if child is not None:
            child.inc()

    def count_tokens(self, model: str, prompt: int, completion: int) -> None:
        children = self._tokens.get(model)
        if children is None:
            return
        if prompt:
            children[0].inc(prompt)
        if completion:
            children[1].inc(completion)

    def deployment(self, model: str, deployment: str) -> DeploymentMetrics:
        return self._deployments[(model, deployment)]


EXPOSITION_TYPE = CONTENT_TYPE_LATEST.encode()  # the content type of `exposition`'s output


def exposition(registry: CollectorRegistry) -> Callable[[], bytes]:
    """The registry's metrics, in the Prometheus text format, each time it is called."""
    def scrape() -> bytes:
        return generate_latest(registry)
    return scrape
