"""The routing part of the configuration: deployment shapes, fallbacks, and what is refused at
start-up."""

from __future__ import annotations

from typing import Any

import pytest

from rolegate.config.load import ConfigError, validate_settings

AUTH = {"dev_issuer": {"enabled": True}}


def settings(models: list[dict[str, Any]]) -> Any:
    return validate_settings({"models": models, "auth": AUTH}, source="<test>")


def problems(models: list[dict[str, Any]]) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        settings(models)
    return raised.value.problems


def test_inline_provider_keys_make_one_deployment_named_after_the_model():
    (model,) = settings([{"name": "gpt-4o", "provider": "openai",
                          "api_base": "https://api.openai.com/v1", "weight": 2}]).models

    assert len(model.deployments) == 1
    assert model.deployment_id(0) == "gpt-4o"
    assert model.deployments[0].weight == 2


def test_deployments_list_gives_numbered_ids_unless_named():
    (model,) = settings([{"name": "gpt-4o", "strategy": "latency", "deployments": [
        {"provider": "mock"}, {"provider": "mock", "id": "west", "model": "gpt-4o-2024"}]}]).models

    assert [model.deployment_id(i) for i in range(2)] == ["gpt-4o-1", "west"]
    assert model.upstream_model(1) == "gpt-4o-2024"
    assert model.strategy == "latency"


def test_inline_keys_and_a_deployments_list_together_are_refused():
    found = problems([{"name": "m", "provider": "mock", "deployments": [{"provider": "mock"}]}])

    assert any("not both" in p for p in found)


def test_fallback_to_an_unknown_model_is_a_startup_error():
    found = problems([{"name": "gpt-4o", "provider": "mock", "fallbacks": ["gpt-5"]},
                      {"name": "mini", "provider": "mock",
                       "context_window_fallbacks": ["huge"]}])

    assert "models[0] (gpt-4o).fallbacks: unknown model 'gpt-5' (known: gpt-4o, mini)" in found
    assert any("context_window_fallbacks: unknown model 'huge'" in p for p in found)


def test_model_falling_back_to_itself_is_refused():
    found = problems([{"name": "gpt-4o", "provider": "mock", "fallbacks": ["gpt-4o"]}])

    assert any("cannot fall back to itself" in p for p in found)


def test_deployment_ids_must_be_unique_across_models():
    found = problems([{"name": "a", "provider": "mock", "id": "east"},
                      {"name": "b", "provider": "mock", "id": "east"}])

    assert any("'east' is used 2 times" in p for p in found)


@pytest.mark.parametrize(("deployment", "expected"), [
    ({"provider": "mock", "weight": 0}, "greater than 0"),
    ({"provider": "mock", "rpm": -1}, "greater than 0"),
    ({"provider": "mock", "first_byte_timeout": 0}, "greater than 0"),
    ({"provider": "azure", "api_base": "https://x"}, "needs deployment and api_version"),
    ({"provider": "openai", "api_base": "https://x", "api_key": "k",
      "auth": {"type": "entra_client_credentials", "token_url": "https://t", "client_id": "c",
               "client_secret": "s"}}, "api_key or auth, not both"),
    ({"provider": "mock", "strategy_typo": 1}, "unknown key"),
], ids=["zero-weight", "negative-rpm", "zero-timeout", "azure-incomplete", "key-and-token",
        "typo"])
def test_bad_deployment_settings_are_refused_with_a_clear_message(deployment, expected):
    found = problems([{"name": "m", "deployments": [deployment]}])

    assert any(expected in p for p in found), found


def test_unknown_strategy_is_refused():
    found = problems([{"name": "m", "provider": "mock", "strategy": "random"}])

    assert any("strategy" in p for p in found)
