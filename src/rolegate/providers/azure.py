"""Azure OpenAI: `{api_base}/openai/deployments/{deployment}/{operation}?api-version=…` with an
`api-key` header."""

from __future__ import annotations

from urllib.parse import quote

from rolegate.config.model import ModelConfig
from rolegate.providers.base import UpstreamCall, UpstreamReply
from rolegate.providers.http import HttpClient, post_json


class AzureProvider:
    def __init__(self, model: ModelConfig, client: HttpClient) -> None:
        assert model.api_base and model.deployment and model.api_version
        self.model = model
        self._client = client
        self._base = (f"{model.api_base.rstrip('/')}/openai/deployments/"
                      f"{quote(model.deployment, safe='')}")
        self._query = f"api-version={quote(model.api_version, safe='')}"
        self._headers = {}
        if model.api_key is not None:
            self._headers["api-key"] = model.api_key.get_secret_value()

    async def open(self, call: UpstreamCall) -> UpstreamReply:
        url = f"{self._base}/{call.operation}?{self._query}"
        return await post_json(self._client, url, call, self._headers, self.model.timeout)
