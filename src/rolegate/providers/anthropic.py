"""Anthropic's Messages API (`api_base` up to and including `/v1`, e.g.
`https://api.anthropic.com/v1`), signed in with `x-api-key`.

Anthropic Messages calls (`messages`, `messages/count_tokens`) go through as they are, with the
caller's `anthropic-version` and `anthropic-beta` (the version defaults to `API_VERSION`). A
chat-completions call is translated to a Messages call and its reply back
(`rolegate.translate.chat_to_messages`; a stream event by event, `translate/chat_stream.py`).
"""

from __future__ import annotations

from rolegate.config.egress import Egress
from rolegate.config.model import DeploymentConfig
from rolegate.errors import InvalidRequest
from rolegate.providers.base import UpstreamCall, UpstreamReply
from rolegate.providers.http import HttpClient, post
from rolegate.providers.overflow import classified, is_anthropic_overflow
from rolegate.providers.translating import translated, translated_stream
from rolegate.translate.chat_to_messages import chat_reply, messages_request, openai_error
from rolegate.translate.chat_stream import ChatStream

API_VERSION = "2023-06-01"
_PASSED = ("anthropic-version", "anthropic-beta")
_NATIVE = ("messages", "messages/count_tokens")


class AnthropicProvider:
    def __init__(self, config: DeploymentConfig, client: HttpClient,
                 egress: Egress | None = None) -> None:
        assert config.api_base is not None
        self.config = config
        self._client = client
        self._egress = egress
        self._base = config.api_base.rstrip("/")
        self._headers = {"anthropic-version": API_VERSION}
        if config.api_key is not None:
            self._headers["x-api-key"] = config.api_key.get_secret_value()

    async def open(self, call: UpstreamCall) -> UpstreamReply:
        if call.operation in _NATIVE:
            return await self._post(call)
        if call.operation != "chat/completions":
            raise InvalidRequest(f"A deployment of provider anthropic does not serve "
                                 f"{call.operation}.", code="unsupported_operation")
        model = str(call.body.get("model"))
        body = messages_request(call.body)
        reply = await self._post(UpstreamCall("messages", body, None, call.is_stream,
                                              call.request_id, time_left=call.time_left,
                                              traceparent=call.traceparent))
        result = await translated(reply, is_stream=call.is_stream,
                                  success=lambda value: chat_reply(value, model=model),
                                  failure=lambda value: openai_error(
                                      value, is_context_overflow=reply.is_context_overflow))
        if result is reply:  # a started stream: translated event by event
            options = call.body.get("stream_options")
            result.chunks = translated_stream(reply.chunks, ChatStream(
                model=model, request_id=call.request_id,
                is_usage_sent=isinstance(options, dict) and options.get("include_usage") is True))
        return result

    async def _post(self, call: UpstreamCall) -> UpstreamReply:
        headers = self._headers
        if call.headers:
            headers = {**headers, **{name: value for name, value in call.headers
                                     if name in _PASSED}}
        return await classified(await post(self._client, f"{self._base}/{call.operation}",
                                           call, headers, self.config, self._egress),
                                is_anthropic_overflow)
