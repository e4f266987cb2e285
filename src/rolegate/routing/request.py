"""`ClientRequest`: what the caller asked for, as routing needs it; and the body each deployment
is sent (its own upstream model name, the end user, the usage chunk asked for)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from rolegate.providers.base import JSON_CONTENT, UpstreamCall
from rolegate.reading.body import rewrite, rewrite_form

USAGE_STREAM_OPERATIONS = ("chat/completions", "completions")  # usage on a chunk of its own
RESPONSES = "responses"  # the Responses API: usage in the closing event
MESSAGES = "messages"  # the Anthropic Messages API: usage in `message_start` / `message_delta`
ANTHROPIC_OPERATIONS = (MESSAGES, "messages/count_tokens")
GENERATE_CONTENT = "generateContent"  # the Gemini API (streamed too): usage on every event
GEMINI_OPERATIONS = (GENERATE_CONTENT, "countTokens", "embedContent", "batchEmbedContents")
# The operations whose API has `stream`: on any other (embeddings, speech, …) a caller's
# `"stream": true` is not a stream, and the reply is read whole and metered from its body.
STREAM_OPERATIONS = frozenset({*USAGE_STREAM_OPERATIONS, RESPONSES, MESSAGES,
                               "audio/transcriptions",
                               "images/generations", "images/edits"})


@dataclass(frozen=True, slots=True)
class ClientRequest:
    """One inference request. `body` is the parsed JSON object (for a multipart form: its text
    fields, and `is_form` is set: the form is rebuilt from its parts for each upstream)."""

    operation: str
    model: str
    body: dict[str, Any]
    raw_body: bytes
    is_stream: bool
    request_id: str
    end_user: str | None = None
    content_type: str = JSON_CONTENT
    is_form: bool = False
    headers: tuple[tuple[str, str], ...] = ()  # the caller's API headers sent on (versions)

    @property
    def has_asked_for_usage(self) -> bool:
        options = self.body.get("stream_options")
        return isinstance(options, dict) and options.get("include_usage") is True

    def is_usage_added(self, include_stream_usage: bool) -> bool:
        """Whether the gateway asks for the usage chunk the caller did not ask for."""
        return (include_stream_usage and self.is_stream and not self.is_form
                and self.operation in USAGE_STREAM_OPERATIONS and not self.has_asked_for_usage)

    def upstream_call(self, upstream_model: str, *, include_stream_usage: bool,
                      time_left: float = math.inf) -> UpstreamCall:
        if self.is_form:  # rebuilt from the parts read, with the deployment's own model name
            fields = {**self.body, "model": upstream_model}
            form, content_type = rewrite_form(self.raw_body, self.content_type,
                                              {"model": upstream_model})
            return UpstreamCall(self.operation, fields, form, self.is_stream, self.request_id,
                                content_type, time_left)
        extra: dict[str, Any] = {}
        end_user = self.end_user
        if self.operation in GEMINI_OPERATIONS:
            end_user = None  # Gemini's request has no field for it: not sent, only recorded
        if end_user is not None and self.operation in ANTHROPIC_OPERATIONS:
            # Anthropic's body has no `user`: the end user goes in `metadata.user_id`.
            metadata = self.body.get("metadata")
            extra["metadata"] = {**(metadata if isinstance(metadata, dict) else {}),
                                 "user_id": end_user}
            end_user = None
        if self.is_usage_added(include_stream_usage):
            options = self.body.get("stream_options")
            extra["stream_options"] = {**(options if isinstance(options, dict) else {}),
                                       "include_usage": True}
        body, raw = rewrite(self.body, upstream_model=upstream_model, end_user=end_user,
                            extra=extra)
        return UpstreamCall(self.operation, body, raw, self.is_stream, self.request_id,
                            time_left=time_left, headers=self.headers)
