"""The one place that maps a deployment's `provider` name to the class that speaks to it, and
settles how its connections go out (`Egress`)."""

from __future__ import annotations

import ssl
from collections.abc import Callable

from rolegate.config.egress import Egress, egress_for
from rolegate.config.load import ConfigError
from rolegate.config.model import DeploymentConfig, EgressConfig
from rolegate.providers.anthropic import AnthropicProvider
from rolegate.providers.azure import AzureProvider
from rolegate.providers.base import PromptCounter, Provider
from rolegate.providers.client_credentials import ClientCredentials
from rolegate.providers.gemini import GeminiProvider, StudioEndpoint
from rolegate.providers.gemini_over_chat import GeminiOverChat
from rolegate.providers.http import HttpClient
from rolegate.providers.mock import MockProvider
from rolegate.providers.openai import OpenAIProvider
from rolegate.providers.translating import MessagesOverChat
from rolegate.providers.vertex import GoogleToken, VertexEndpoint, load_credentials


def build_provider(config: DeploymentConfig, client: HttpClient, clock: Callable[[], float],
                   counter: PromptCounter, egress_config: EgressConfig | None = None
                   ) -> Provider:
    """The provider for `config`, serving every API surface: its own API passed through, the
    others translated; `counter` estimates the counts its API cannot make."""
    if config.provider == "mock":
        return MessagesOverChat(GeminiOverChat(MockProvider(config), counter), counter)
    egress = egress_for(config, egress_config or EgressConfig())
    if egress is not None and egress.has_tls_material:
        try:  # at start-up: a CA bundle or certificate that cannot be read stops the gateway
            client.pool.tls_context(egress)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"deployment {config.id or config.api_base}", [
                f"cannot load its TLS files ({egress.ca_bundle_file=}, "
                f"{egress.client_cert_file=}, {egress.client_key_file=}): {exc}"]) from None
    token = ClientCredentials(config.auth, client, clock) if config.auth is not None else None
    if config.provider == "anthropic":
        return GeminiOverChat(AnthropicProvider(config, client, egress), counter)
    if config.provider == "gemini":
        return MessagesOverChat(GeminiProvider(config, client, StudioEndpoint(config), egress),
                                counter)
    if config.provider == "vertex":
        endpoint = VertexEndpoint(config, GoogleToken(load_credentials(config)))
        return MessagesOverChat(GeminiProvider(config, client, endpoint, egress), counter)
    if config.provider == "bedrock":
        return MessagesOverChat(GeminiOverChat(_bedrock(config, client, egress), counter),
                                counter)
    if config.provider == "azure":
        return MessagesOverChat(GeminiOverChat(AzureProvider(config, client, token, egress),
                                               counter), counter)
    return MessagesOverChat(GeminiOverChat(OpenAIProvider(config, client, token, egress),
                                           counter), counter)


def _bedrock(config: DeploymentConfig, client: HttpClient, egress: Egress | None) -> Provider:
    # botocore is an optional extra: imported only when a deployment needs it.
    try:
        from rolegate.providers.bedrock import bedrock_provider
    except ImportError:
        raise ConfigError(f"deployment {config.id or config.model or 'bedrock'}", [
            "provider bedrock needs botocore: pip install 'rolegate[bedrock]'"]) from None
    return bedrock_provider(config, client, egress)
