"""What every provider offers: `open(call)` sends one request upstream and returns its reply,
whose body is relayed to the caller chunk by chunk."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from rolegate.config.model import ModelConfig


@dataclass(frozen=True, slots=True)
class UpstreamCall:
    """One request for an upstream: the OpenAI operation (`chat/completions`, `embeddings`, …),
    the JSON body to send (already rewritten for this upstream) and whether it streams."""

    operation: str
    body: dict[str, Any]
    raw_body: bytes | None
    is_stream: bool
    request_id: str


async def _nothing() -> None:
    return None


@dataclass(slots=True)
class UpstreamReply:
    status: int
    content_type: bytes
    chunks: AsyncIterator[bytes]
    close: Callable[[], Awaitable[None]] = field(default=_nothing)
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)


class Provider(Protocol):
    model: ModelConfig

    async def open(self, call: UpstreamCall) -> UpstreamReply: ...
