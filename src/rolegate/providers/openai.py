"""OpenAI's API and servers that speak it (vLLM, Ollama, LM Studio: `openai-compatible`).

`api_base` is the URL up to and including `/v1`; the operation is appended to it.
"""

from __future__ import annotations

from rolegate.config.egress import Egress
from rolegate.config.model import DeploymentConfig
from rolegate.providers.base import UpstreamCall, UpstreamReply
from rolegate.providers.client_credentials import ClientCredentials
from rolegate.providers.http import HttpClient, post
from rolegate.providers.overflow import classified, is_openai_overflow


class OpenAIProvider:
    def __init__(self, config: DeploymentConfig, client: HttpClient,
                 token: ClientCredentials | None = None, egress: Egress | None = None) -> None:
        assert config.api_base is not None
        self.config = config
        self._client = client
        self._token = token
        self._egress = egress
        self._base = config.api_base.rstrip("/")
        self._headers = {}
        if config.api_key is not None:
            self._headers["authorization"] = f"Bearer {config.api_key.get_secret_value()}"

    async def open(self, call: UpstreamCall) -> UpstreamReply:
        headers = self._headers
        if self._token is not None:
            headers = {"authorization": f"Bearer {await self._token.access_token()}"}
        return await classified(await post(self._client, f"{self._base}/{call.operation}",
                                           call, headers, self.config, self._egress),
                                is_openai_overflow)
