"""Choosing a deployment: weighted round-robin, least-in-flight and lowest latency."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from rolegate.config.model import DeploymentConfig, HealthConfig
from rolegate.providers.mock import MockProvider
from rolegate.routing.deployment import Deployment
from rolegate.routing.select import LeastInFlight, LowestLatency, WeightedRoundRobin


def deployment(name: str, weight: float = 1.0) -> Deployment:
    provider = MockProvider(DeploymentConfig(provider="mock", weight=weight))
    return Deployment(name, "m", provider, HealthConfig())


@pytest.mark.parametrize("weights", [(3, 1), (1, 1, 1), (5, 2, 1), (0.5, 1.5)],
                         ids=["3:1", "even", "5:2:1", "fractional"])
def test_weighted_round_robin_splits_a_thousand_requests_by_weight(weights):
    pool = [deployment(f"d{i}", w) for i, w in enumerate(weights)]
    selector = WeightedRoundRobin()

    counts = Counter(selector.choose(pool).id for _ in range(1000))

    for index, weight in enumerate(weights):
        expected = 1000 * weight / sum(weights)
        assert abs(counts[f"d{index}"] - expected) <= 0.02 * 1000  # within 2 points


def test_weighted_round_robin_interleaves_rather_than_bursting():
    heavy, light = deployment("heavy", 3), deployment("light", 1)
    selector = WeightedRoundRobin()

    order = [selector.choose([heavy, light]).id for _ in range(8)]

    assert order.count("light") == 2
    assert "light" in order[:4] and "light" in order[4:]


def test_weighted_round_robin_keeps_the_split_among_the_deployments_left():
    pool = [deployment("a", 1), deployment("b", 1), deployment("c", 2)]
    selector = WeightedRoundRobin()

    counts = Counter(selector.choose(pool[1:]).id for _ in range(300))

    assert abs(counts["b"] - 100) <= 5 and abs(counts["c"] - 200) <= 5


def test_least_in_flight_picks_the_least_busy_per_unit_of_weight():
    a, b, c = deployment("a", 1), deployment("b", 2), deployment("c", 1)
    a.in_flight, b.in_flight, c.in_flight = 2, 2, 3

    assert LeastInFlight(random.Random(1)).choose([a, b, c]).id == "b"


def test_latency_strategy_measures_every_deployment_first_then_picks_the_fastest():
    a, b = deployment("a"), deployment("b")
    selector = LowestLatency(random.Random(1))
    a.record_success(0.8)

    assert selector.choose([a, b]).id == "b"  # not measured yet
    b.record_success(0.2)
    assert selector.choose([a, b]).id == "b"
    for _ in range(5):
        b.record_success(2.0)  # b has become slow: its moving average follows
    assert selector.choose([a, b]).id == "a"


def test_latency_average_weighs_recent_samples_without_forgetting_at_once():
    a = deployment("a")
    a.record_success(1.0)
    a.record_success(3.0)

    assert a.latency == pytest.approx(1.6)
