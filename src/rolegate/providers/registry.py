"""The one place that maps a deployment's `provider` name to the class that speaks to it."""

from __future__ import annotations

from collections.abc import Callable

from rolegate.config.model import DeploymentConfig
from rolegate.providers.azure import AzureProvider
from rolegate.providers.base import Provider
from rolegate.providers.client_credentials import ClientCredentials
from rolegate.providers.http import HttpClient
from rolegate.providers.mock import MockProvider
from rolegate.providers.openai import OpenAIProvider


def build_provider(config: DeploymentConfig, client: HttpClient,
                   clock: Callable[[], float]) -> Provider:
    if config.provider == "mock":
        return MockProvider(config)
    token = ClientCredentials(config.auth, client, clock) if config.auth is not None else None
    if config.provider == "azure":
        return AzureProvider(config, client, token)
    return OpenAIProvider(config, client, token)
