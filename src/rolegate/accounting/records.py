"""`UsageRecord`: what one request that reached an upstream used, and who asked for it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import String

from rolegate.storage.tables import usage


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
        for name, length in _BOUNDED:
            value = row[name]
            if value is not None and len(value) > length:
                row[name] = fitted(value, length)
        row["day"] = utc_day(self.ts)
        return row


_FIELDS = tuple(field.name for field in fields(UsageRecord))
# Identities come from tokens and configuration, whose values no column bounds: one longer than
# its column is stored shortened but still distinct, so the record lands (a refused record would
# go unpaid) and each identity keeps its own totals.
_BOUNDED = tuple((name, cast(int, cast(String, usage.c[name].type).length)) for name in
                 ("issuer", "subject", "client_id", "end_user", "rule", "model", "deployment"))


def fitted(value: str, length: int) -> str:
    """`value` in at most `length` characters: its start, `~`, and 16 hex digits of its hash."""
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"{value[:length - 17]}~{digest}"


def utc_day(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d")
