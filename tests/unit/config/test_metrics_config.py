"""`server.metrics`: a public metrics path never stands in for a route the gateway serves."""

from __future__ import annotations

from typing import Any

import pytest

from rolegate.config.load import ConfigError, validate_settings


def config(**metrics: Any) -> dict[str, Any]:
    return {
        "server": {"metrics": metrics},
        "models": [{"name": "echo", "provider": "mock"}],
        "auth": {"dev_issuer": {"enabled": True}},
        "policy": [{"name": "users", "when": {"roles": ["user"]},
                    "allow": {"routes": ["inference"], "models": ["*"]}}],
    }


@pytest.mark.parametrize("path", ["/v1/models", "/v1/chat/completions", "/admin/anything",
                                  "/health/live", "/dev/jwks.json", "/openai/deployments/x/"
                                  "chat/completions"],
                         ids=["route", "post-route", "admin", "health", "dev-keys", "azure"])
def test_a_public_metrics_path_that_the_gateway_already_serves_is_refused(path):
    with pytest.raises(ConfigError) as caught:
        validate_settings(config(path=path), source="test.yaml")

    assert caught.value.problems == [
        f"server.metrics.path: {path!r} is a path the gateway already serves "
        "(choose another, such as /metrics)"]


@pytest.mark.parametrize("metrics", [{"path": "/v1/models", "public": False},
                                     {"path": "/v1/models", "enabled": False}],
                         ids=["not-public", "disabled"])
def test_the_path_does_not_matter_when_nothing_is_served_on_it(metrics):
    validate_settings(config(**metrics), source="test.yaml")


@pytest.mark.parametrize("path", ["metrics", "/metrics?x=1", "/", "/a b"],
                         ids=["relative", "query", "root", "space"])
def test_a_metrics_path_must_be_a_plain_absolute_path(path):
    with pytest.raises(ConfigError) as caught:
        validate_settings(config(path=path), source="test.yaml")

    assert any(problem.startswith("server.metrics.path") for problem in caught.value.problems)


def test_metrics_are_public_on_their_usual_path_by_default():
    metrics = validate_settings(config(), source="test.yaml").server.metrics

    assert (metrics.enabled, metrics.public, metrics.path) == (True, True, "/metrics")
