"""Amazon Bedrock Runtime: chat through the Converse API (`/model/{modelId}/converse`, or
`converse-stream` for a stream in AWS's event-stream framing), embeddings through InvokeModel
(`/model/{modelId}/invoke`) on Titan (`amazon.titan-embed-*`) or Cohere (`cohere.embed-*`).

Every request is signed with SigV4 (`aws_signing.py`) with the AWS credential chain's
credentials, those of `aws_profile`, or the static `aws_access_key_id` and
`aws_secret_access_key`. The endpoint is `https://bedrock-runtime.<region>
.amazonaws.com` unless `api_base` says otherwise. A chat call is translated to Converse and back
(`rolegate.translate.chat_to_converse`, a stream frame by frame in `converse_stream.py`); an
Anthropic Messages call reaches it through `MessagesOverChat`, translated to chat first.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any
from urllib.parse import quote

import orjson
from botocore.credentials import Credentials
from botocore.exceptions import BotoCoreError
from botocore.session import Session

from rolegate.config.egress import Egress
from rolegate.config.load import ConfigError
from rolegate.config.model import DeploymentConfig
from rolegate.errors import InvalidRequest
from rolegate.providers.aws_signing import AwsCredentials, sign
from rolegate.providers.base import UpstreamCall, UpstreamReply
from rolegate.providers.http import HttpClient, post
from rolegate.providers.overflow import classified, is_bedrock_overflow
from rolegate.providers.translating import read_whole, replaced, translated, translated_stream
from rolegate.translate.chat_to_converse import chat_reply, converse_request, openai_error
from rolegate.translate.converse_stream import ConverseChatStream
from rolegate.translate.embeddings_to_bedrock import EmbeddingModel, embedding_model

SERVICE = "bedrock"  # the SigV4 signing name of bedrock-runtime


class BedrockProvider:
    def __init__(self, config: DeploymentConfig, client: HttpClient, egress: Egress | None,
                 session: Session) -> None:
        where = f"deployment {config.id or config.model or 'bedrock'}"
        try:
            region = config.region or session.get_config_variable("region")
        except BotoCoreError as exc:  # e.g. `aws_profile` names no profile
            raise ConfigError(where, [f"aws_profile: {exc}"]) from None
        if not region:
            raise ConfigError(where, ["provider bedrock needs a region: set `region`, or "
                                      "AWS_REGION, or a region in the AWS profile"])
        self.config = config
        self.region = str(region)
        self._client = client
        self._egress = egress
        self._base = (config.api_base or
                      f"https://bedrock-runtime.{self.region}.amazonaws.com").rstrip("/")
        self._credentials = AwsCredentials(_static(config) or session.get_credentials)

    async def open(self, call: UpstreamCall) -> UpstreamReply:
        if call.operation == "chat/completions":
            return await self._converse(call)
        if call.operation == "embeddings":
            return await self._embeddings(call)
        raise InvalidRequest(f"A deployment of provider bedrock does not serve "
                             f"{call.operation}.", code="unsupported_operation")

    async def _converse(self, call: UpstreamCall) -> UpstreamReply:
        model = str(call.body.get("model"))
        action = "converse-stream" if call.is_stream else "converse"
        reply = await self._post(model, action, converse_request(call.body), call)
        result = await translated(
            reply, is_stream=call.is_stream, is_error=_is_bedrock_error,
            success=lambda value: chat_reply(value, model=model),
            failure=lambda value: openai_error(
                value, status=reply.status, is_context_overflow=reply.is_context_overflow))
        if result is reply:  # a started stream: translated frame by frame
            options = call.body.get("stream_options")
            result.chunks = translated_stream(reply.chunks, ConverseChatStream(
                model=model, request_id=call.request_id,
                is_usage_sent=isinstance(options, dict) and options.get("include_usage") is True))
            result.content_type = b"text/event-stream"
        return result

    async def _embeddings(self, call: UpstreamCall) -> UpstreamReply:
        """Titan embeds one text per call: a list is sent text by text and the vectors
        gathered into one reply. Cohere takes the list at once."""
        model = str(call.body.get("model"))
        embedder: EmbeddingModel = embedding_model(model, call.body)
        vectors: list[list[float]] = []
        tokens = 0
        for body in embedder.requests():
            reply = await self._post(model, "invoke", body, call)
            result = await translated(reply, is_stream=False, is_error=_is_bedrock_error,
                                      success=_as_is, failure=partial(openai_error,
                                                                      status=reply.status))
            if result.status != 200:
                return result
            value = orjson.loads(await read_whole(result))
            await result.end()
            found, counted = embedder.vectors(value)
            vectors += found
            tokens += counted
        return replaced(result, orjson.dumps(embedder.reply(vectors, tokens)))

    async def _post(self, model: str, action: str, body: dict[str, Any],
                    call: UpstreamCall) -> UpstreamReply:
        url = f"{self._base}/model/{quote(model, safe='')}/{action}"
        raw = orjson.dumps(body)
        headers = sign(url, raw, await self._credentials.current(), region=self.region,
                       service=SERVICE)
        if call.is_stream:
            headers["accept"] = "application/vnd.amazon.eventstream"
        signed = UpstreamCall(call.operation, body, raw, call.is_stream, call.request_id,
                              time_left=call.time_left, traceparent=call.traceparent)
        return await classified(await post(self._client, url, signed, headers, self.config,
                                           self._egress), is_bedrock_overflow)


def _static(config: DeploymentConfig) -> Callable[[], Credentials] | None:
    """The static keys of `config`, when it gives them instead of the credential chain."""
    key, secret = config.aws_access_key_id, config.aws_secret_access_key
    if key is None or secret is None:
        return None
    token = config.aws_session_token
    credentials = Credentials(key.get_secret_value(), secret.get_secret_value(),
                              None if token is None else token.get_secret_value())
    return lambda: credentials


def _as_is(value: dict[str, Any]) -> dict[str, Any]:
    return value


def _is_bedrock_error(value: dict[str, Any]) -> bool:
    return isinstance(value.get("message", value.get("Message")), str)


def bedrock_provider(config: DeploymentConfig, client: HttpClient,
                     egress: Egress | None) -> BedrockProvider:
    """The provider, with the AWS credential chain of `aws_profile` or the default one."""
    return BedrockProvider(config, client, egress, Session(profile=config.aws_profile))
