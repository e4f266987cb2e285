"""What every provider offers: `open(call)` sends one request upstream and returns its reply,
whose body is relayed to the caller chunk by chunk."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from rolegate.config.model import DeploymentConfig

JSON_CONTENT = "application/json"


@dataclass(frozen=True, slots=True)
class UpstreamCall:
    """One request for an upstream: the OpenAI operation (`chat/completions`, `embeddings`, …),
    the body to send (already rewritten for this upstream) and whether it streams.

    `body` is the parsed JSON object (for a multipart form: its text fields); `raw_body`, when
    set, is sent as is with `content_type`. `time_left` bounds the attempt: until the reply's
    head, and for a reply that does not stream until its end."""

    operation: str
    body: dict[str, Any]
    raw_body: bytes | None
    is_stream: bool
    request_id: str
    content_type: str = JSON_CONTENT
    time_left: float = math.inf


async def _nothing() -> None:
    return None


@dataclass(slots=True)
class UpstreamReply:
    """The upstream's answer. `retry_after` is what it asked for (seconds) on 429/503;
    `usage` is filled in by the relay once the reply's token usage has been seen."""

    status: int
    content_type: bytes
    chunks: AsyncIterator[bytes]
    close: Callable[[], Awaitable[None]] = field(default=_nothing)
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    retry_after: float | None = None
    usage: dict[str, Any] | None = None


class Provider(Protocol):
    config: DeploymentConfig

    async def open(self, call: UpstreamCall) -> UpstreamReply: ...
