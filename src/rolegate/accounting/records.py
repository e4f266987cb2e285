"""`UsageRecord`: what one request that reached an upstream used, and who asked for it."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class TokenUsage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


@dataclass(frozen=True, slots=True)
class UsageRecord:
    ts: float
    request_id: str
    issuer: str
    subject: str
    client_id: str | None
    key_id: str | None
    end_user: str | None
    rule: str | None
    model: str
    provider: str
    deployment: str
    operation: str
    is_stream: bool
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cost_usd: float
    status: int
    latency_ms: float
    estimated: bool = False  # tokens counted by the gateway: the upstream's usage never came

    def row(self) -> dict[str, Any]:
        # Read field by field: `dataclasses.asdict` deep-copies every value, which cost more
        # than the insert itself at a few thousand records per second.
        row = {name: getattr(self, name) for name in _FIELDS}
        row["day"] = utc_day(self.ts)
        return row


_FIELDS = tuple(field.name for field in fields(UsageRecord))


def utc_day(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d")
