"""A bedrock deployment's configuration: what it signs with, checked before serving, and the
region it needs at start-up."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.session import Session

from rolegate.config.load import ConfigError
from rolegate.config.model import DeploymentConfig
from rolegate.providers.bedrock import BedrockProvider
from rolegate.providers.http import HttpClient


def _model(**deployment: Any) -> dict[str, Any]:
    return {"models": [{"name": "nova", "provider": "bedrock", **deployment}],
            "auth": {"dev_issuer": {"enabled": True}}}


@pytest.mark.parametrize(("deployment", "message"), [
    ({"api_key": "sk-1"}, "signs its requests with AWS credentials"),
    ({"aws_access_key_id": "AKID"}, "aws_access_key_id and aws_secret_access_key together"),
    ({"aws_session_token": "t"}, "aws_session_token needs aws_access_key_id"),
    ({"aws_access_key_id": "AKID", "aws_secret_access_key": "s", "aws_profile": "prod"},
     "aws_profile or static AWS keys"),
    ({"region": "eu west"}, "region"),
], ids=["api-key", "half-static-keys", "token-alone", "profile-and-keys", "bad-region"])
def test_a_bedrock_deployment_that_cannot_sign_is_refused_before_serving(settings_from,
                                                                         deployment, message):
    with pytest.raises(ConfigError) as refused:
        settings_from(_model(**deployment))

    assert message in str(refused.value)


def test_aws_fields_on_another_provider_are_refused(settings_from):
    with pytest.raises(ConfigError) as refused:
        settings_from({"models": [{"name": "gpt", "provider": "openai",
                                   "api_base": "https://api.openai.com/v1",
                                   "region": "us-east-1"}],
                       "auth": {"dev_issuer": {"enabled": True}}})

    assert "are for provider bedrock" in str(refused.value)


def test_a_deployment_with_no_region_anywhere_stops_the_start(settings_from):
    settings = settings_from(_model())
    session = Session()
    session.set_config_variable("region", None)  # nothing in the environment or profile either

    with pytest.raises(ConfigError) as refused:
        BedrockProvider(settings.models[0].deployments[0], HttpClient(), None, session)

    assert "needs a region" in str(refused.value)


def test_the_region_names_the_default_endpoint(settings_from):
    config: DeploymentConfig = settings_from(_model(region="eu-central-1")).models[0].deployments[0]
    provider = BedrockProvider(config, HttpClient(), None, Session())

    assert provider.region == "eu-central-1"
    assert provider._base == "https://bedrock-runtime.eu-central-1.amazonaws.com"
