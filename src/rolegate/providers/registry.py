"""The one place that maps a model's `provider` name to the class that speaks to it."""

from __future__ import annotations

from rolegate.config.model import ModelConfig
from rolegate.providers.azure import AzureProvider
from rolegate.providers.base import Provider
from rolegate.providers.http import HttpClient
from rolegate.providers.mock import MockProvider
from rolegate.providers.openai import OpenAIProvider


def build_provider(model: ModelConfig, client: HttpClient) -> Provider:
    if model.provider == "mock":
        return MockProvider(model)
    if model.provider == "azure":
        return AzureProvider(model, client)
    return OpenAIProvider(model, client)
