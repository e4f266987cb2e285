"""Google's Gemini API, as Google AI Studio serves it (`api_base` up to the version,
default `https://generativelanguage.googleapis.com/v1beta`, signed in with `x-goog-api-key`), and
the one Gemini caller both it and Vertex AI (`vertex.py`) share: `GeminiProvider`, which differs
between them only by its `GoogleEndpoint` (where a model's methods are, how to sign in).

Gemini calls (`generateContent`, streamed as `streamGenerateContent?alt=sse`, `countTokens`,
`embedContent`, `batchEmbedContents`) go through as they are, the model in the URL. A
chat-completions call is translated to `generateContent` and its reply back
(`rolegate.translate.chat_to_gemini`; a stream event by event), and an embeddings call to
`batchEmbedContents`.
"""

from __future__ import annotations

from typing import Any, Protocol
from urllib.parse import quote

from rolegate.config.egress import Egress
from rolegate.config.model import DeploymentConfig
from rolegate.errors import InvalidRequest
from rolegate.providers.base import UpstreamCall, UpstreamReply
from rolegate.providers.http import HttpClient, post
from rolegate.providers.overflow import classified, is_google_overflow
from rolegate.providers.translating import translated, translated_stream
from rolegate.translate.chat_from_gemini_stream import GeminiChatStream
from rolegate.translate.chat_to_gemini import chat_reply, gemini_request, openai_error
from rolegate.translate.gemini_embeddings import BATCH, batch_request, openai_embeddings

GENERATE = "generateContent"
STUDIO_BASE = "https://generativelanguage.googleapis.com/v1beta"
EMBEDDINGS = ("embedContent", BATCH)
NATIVE = (GENERATE, "countTokens", *EMBEDDINGS)


class GoogleEndpoint(Protocol):
    """Where a deployment's Gemini methods are and how the gateway signs in there."""

    is_embedding: bool  # whether it serves embedContent / batchEmbedContents

    def url(self, model: str, method: str) -> str: ...

    async def headers(self) -> dict[str, str]: ...


class StudioEndpoint:
    """Google AI Studio: `{api_base}/models/{model}:{method}`, the key in `x-goog-api-key`."""

    is_embedding = True

    def __init__(self, config: DeploymentConfig) -> None:
        self._base = (config.api_base or STUDIO_BASE).rstrip("/")
        self._headers = {} if config.api_key is None else {
            "x-goog-api-key": config.api_key.get_secret_value()}

    def url(self, model: str, method: str) -> str:
        return f"{self._base}/models/{quote(model, safe='')}:{method}"

    async def headers(self) -> dict[str, str]:
        return self._headers


class GeminiProvider:
    def __init__(self, config: DeploymentConfig, client: HttpClient, endpoint: GoogleEndpoint,
                 egress: Egress | None = None) -> None:
        self.config = config
        self._client = client
        self._endpoint = endpoint
        self._egress = egress
        # (model, method) -> URL: the model is the deployment's own, the methods a handful.
        self._urls: dict[tuple[str, str], str] = {}

    async def open(self, call: UpstreamCall) -> UpstreamReply:
        model = str(call.body.get("model"))
        if call.operation in EMBEDDINGS or call.operation == "embeddings":
            self._check_embeddings(call.operation)
        if call.operation in NATIVE:
            return await self._post(call, model, _native_body(call, model))
        if call.operation == "embeddings":
            reply = await self._post(UpstreamCall(BATCH, call.body, None, False,
                                                  call.request_id, time_left=call.time_left,
                                                  traceparent=call.traceparent),
                                     model, batch_request(call.body, model=model))
            encoding = str(call.body.get("encoding_format", "float"))
            return await translated(reply, is_stream=False, failure=openai_error,
                                    success=lambda value: openai_embeddings(
                                        value, model=model, encoding_format=encoding))
        if call.operation != "chat/completions":
            raise InvalidRequest(f"A deployment of provider {self.config.provider} does not "
                                 f"serve {call.operation}.", code="unsupported_operation")
        return await self._chat(call, model)

    def _check_embeddings(self, operation: str) -> None:
        if not self._endpoint.is_embedding:
            raise InvalidRequest(f"A deployment of provider {self.config.provider} does not "
                                 f"serve {operation}.", code="unsupported_operation")

    async def _chat(self, call: UpstreamCall, model: str) -> UpstreamReply:
        reply = await self._post(UpstreamCall(GENERATE, call.body, None, call.is_stream,
                                              call.request_id, time_left=call.time_left,
                                              traceparent=call.traceparent),
                                 model, gemini_request(call.body))
        result = await translated(reply, is_stream=call.is_stream,
                                  failure=lambda value: openai_error(
                                      value, is_context_overflow=reply.is_context_overflow),
                                  success=lambda value: chat_reply(
                                      value, model=model, request_id=call.request_id))
        if result is reply:  # a started stream: translated event by event
            options = call.body.get("stream_options")
            result.chunks = translated_stream(reply.chunks, GeminiChatStream(
                model=model, request_id=call.request_id,
                is_usage_sent=isinstance(options, dict) and options.get("include_usage") is True))
        return result

    async def _post(self, call: UpstreamCall, model: str, body: dict[str, Any]) -> UpstreamReply:
        method = call.operation
        if method == GENERATE and call.is_stream:
            method = "streamGenerateContent?alt=sse"
        sent = UpstreamCall(call.operation, body, None, call.is_stream, call.request_id,
                            time_left=call.time_left, traceparent=call.traceparent)
        url = self._urls.get((model, method))
        if url is None:
            url = self._urls[model, method] = self._endpoint.url(model, method)
        return await classified(await post(self._client, url,
                                           sent, await self._endpoint.headers(), self.config,
                                           self._egress), is_google_overflow)


def _native_body(call: UpstreamCall, model: str) -> dict[str, Any]:
    """A Gemini call's body as the API takes it: the model is in the URL, not the body, and
    each request inside it (a batch's, countTokens' `generateContentRequest`) names the
    deployment's model."""
    body = {name: value for name, value in call.body.items() if name != "model"}
    if call.operation == BATCH and isinstance(body.get("requests"), list):
        body["requests"] = [{**request, "model": f"models/{model}"}
                            for request in body["requests"] if isinstance(request, dict)]
    inner = body.get("generateContentRequest")
    if call.operation == "countTokens" and isinstance(inner, dict):
        body["generateContentRequest"] = {**inner, "model": f"models/{model}"}
    return body
