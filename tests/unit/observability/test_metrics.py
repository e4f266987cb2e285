"""`GatewayMetrics` on its own registry: label values stay within what the configuration names."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from rolegate.observability.metrics import GatewayMetrics
from tests.support.scrape import Scrape


def metrics_of(registry: CollectorRegistry) -> Scrape:
    return Scrape(generate_latest(registry).decode())


def test_two_registries_keep_their_counts_apart():
    first, second = CollectorRegistry(), CollectorRegistry()
    GatewayMetrics(first, models={"m": ["m"]}).observe_request("inference", "m", 200, 0.1)
    GatewayMetrics(second, models={"m": ["m"]})

    assert metrics_of(first).value("rolegate_requests_total", route_group="inference",
                                   model="m", status="200") == 1
    assert metrics_of(second).value("rolegate_requests_total", route_group="inference",
                                    model="m", status="200") is None


def test_a_model_outside_the_configuration_is_never_a_label_value():
    registry = CollectorRegistry()
    metrics = GatewayMetrics(registry, models={"gpt-4o": ["a", "b"]})
    for index in range(50):
        metrics.observe_request("inference", f"caller-chosen-{index}", 404, 0.001)
    metrics.observe_request("info", None, 200, 0.001)
    metrics.count_tokens("caller-chosen-0", 10, 10)

    scrape = metrics_of(registry)

    assert "caller-chosen" not in scrape.text
    assert scrape.value("rolegate_requests_total", route_group="inference", model="_unknown",
                        status="404") == 50
    assert scrape.value("rolegate_requests_total", route_group="info", model="_none",
                        status="200") == 1


def test_children_known_at_start_up_are_exported_before_any_request():
    registry = CollectorRegistry()
    GatewayMetrics(registry, models={"gpt-4o": ["east", "west"]}, rules=["users"])

    scrape = metrics_of(registry)

    assert scrape.label_values("rolegate_upstream_attempts_total", "deployment") == {
        "east", "west"}
    assert scrape.value("rolegate_upstream_attempts_total", model="gpt-4o", deployment="east",
                        outcome="timeout") == 0
    assert scrape.value("rolegate_authz_decisions_total", decision="deny", rule="users") == 0
    assert scrape.value("rolegate_rate_limited_total", limit="tokens_per_day") == 0
    assert scrape.value("rolegate_tokens_total", model="gpt-4o", kind="prompt") == 0


def test_request_durations_are_bucketed_from_sub_millisecond_to_minutes():
    registry = CollectorRegistry()
    metrics = GatewayMetrics(registry, models={})
    metrics.observe_request("public", None, 200, 0.0002)
    metrics.observe_request("inference", None, 200, 90.0)

    scrape = metrics_of(registry)

    assert scrape.value("rolegate_request_duration_seconds_bucket", route_group="public",
                        le="0.0005") == 1
    assert scrape.value("rolegate_request_duration_seconds_bucket", route_group="inference",
                        le="60.0") == 0
    assert scrape.value("rolegate_request_duration_seconds_bucket", route_group="inference",
                        le="120.0") == 1
