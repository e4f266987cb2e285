"""Azure OpenAI: `{api_base}/openai/deployments/{deployment}/{operation}?api-version=…`, signed in
with an `api-key` header or, with `auth: {type: entra_client_credentials}`, an Entra ID token."""

from __future__ import annotations

from urllib.parse import quote

from rolegate.config.egress import Egress
from rolegate.config.model import DeploymentConfig
from rolegate.providers.base import UpstreamCall, UpstreamReply
from rolegate.providers.client_credentials import ClientCredentials
from rolegate.providers.http import HttpClient, post
from rolegate.providers.overflow import classified, is_openai_overflow


class AzureProvider:
    def __init__(self, config: DeploymentConfig, client: HttpClient,
                 token: ClientCredentials | None = None, egress: Egress | None = None) -> None:
        assert config.api_base and config.deployment and config.api_version
        self.config = config
        self._client = client
        self._token = token
        self._egress = egress
        self._base = (f"{config.api_base.rstrip('/')}/openai/deployments/"
                      f"{quote(config.deployment, safe='')}")
        self._query = f"api-version={quote(config.api_version, safe='')}"
        self._headers = {}
        if config.api_key is not None:
            self._headers["api-key"] = config.api_key.get_secret_value()

    async def open(self, call: UpstreamCall) -> UpstreamReply:
        headers = self._headers
        if self._token is not None:
            headers = {"authorization": f"Bearer {await self._token.access_token()}"}
        url = f"{self._base}/{call.operation}?{self._query}"
        return await classified(await post(self._client, url, call, headers, self.config,
                                           self._egress), is_openai_overflow)
