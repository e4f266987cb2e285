"""OpenAI's API and servers that speak it (vLLM, Ollama, LM Studio: `openai-compatible`).

`api_base` is the URL up to and including `/v1`; the operation is appended to it.
"""

from __future__ import annotations

from rolegate.config.model import ModelConfig
from rolegate.providers.base import UpstreamCall, UpstreamReply
from rolegate.providers.http import HttpClient, post_json


class OpenAIProvider:
    def __init__(self, model: ModelConfig, client: HttpClient) -> None:
        assert model.api_base is not None
        self.model = model
        self._client = client
        self._base = model.api_base.rstrip("/")
        self._headers = {}
        if model.api_key is not None:
            self._headers["authorization"] = f"Bearer {model.api_key.get_secret_value()}"

    async def open(self, call: UpstreamCall) -> UpstreamReply:
        url = f"{self._base}/{call.operation}"
        return await post_json(self._client, url, call, self._headers, self.model.timeout)
