"""`UsageRecord`: what one request that reached an upstream used, and who asked for it."""

from __future__ import annotations

import functools
import hashlib
import itertools
import math
import operator
import os
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import String

from rolegate.storage.tables import usage, usage_dimensions


@dataclass(frozen=True, slots=True)
class TokenUsage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


# A caller's values of `accounting.dimensions`: (name, value) pairs.
Dimensions = tuple[tuple[str, str], ...]


class _RecordIds:
    """Record ids unique across processes and replicas without a random draw (a system call)
    each: 16 random hex digits drawn once per process (again in a forked child), then a
    16-digit counter."""

    def __init__(self) -> None:
        self.reseed()

    def reseed(self) -> None:
        self._prefix = secrets.token_hex(8)
        self._counter = itertools.count()

    def next(self) -> str:
        return f"{self._prefix}{next(self._counter):016x}"


_record_ids = _RecordIds()
os.register_at_fork(after_in_child=_record_ids.reseed)


def new_record_id() -> str:
    """32 hex digits, never the same twice (what `usage.record_id` holds)."""
    return _record_ids.next()


# Not frozen: a frozen dataclass sets each of its 21 fields through `object.__setattr__`,
# which made building one three times as slow, once per request. Nothing changes a record once
# made (`dataclasses.replace` makes another).
@dataclass(slots=True)
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
    # The caller's configured claims (`accounting.dimensions`): (name, value) pairs, values
    # already bounded by `dimension_values`; stored in `usage_dimensions`.
    dimensions: Dimensions = ()
    # Made here, never taken from the request (a caller chooses its `x-request-id`): the
    # database keeps one row per id, so a record written twice (replayed from the spool after
    # a crash) is counted once.
    record_id: str = field(default_factory=new_record_id)

    def row(self) -> dict[str, Any]:
        return dict(zip(COLUMNS, self.values(), strict=True))

    def values(self) -> tuple[Any, ...]:
        """The record's `usage` row, in the order of `COLUMNS` (what a COPY writes)."""
        # Read by one `attrgetter` of every field: `dataclasses.asdict` deep-copies every value,
        # which cost more than the insert itself at a few thousand records per second.
        return (*_bounded(_read_fields(self)), utc_day(self.ts))


_FIELDS = tuple(column.name for column in fields(UsageRecord) if column.name != "dimensions")
_read_fields = operator.attrgetter(*_FIELDS)
COLUMNS = (*_FIELDS, "day")  # the `usage` columns a record fills, in `values()` order
# Identities come from tokens and configuration, whose values no column bounds: one longer than
# its column is stored shortened but still distinct, so the record lands (a refused record would
# go unpaid) and each identity keeps its own totals.
_BOUNDED = tuple((_FIELDS.index(name), cast(int, cast(String, usage.c[name].type).length))
                 for name in ("issuer", "subject", "client_id", "end_user", "rule", "model",
                              "deployment"))


def _bounded(values: tuple[Any, ...]) -> Sequence[Any]:
    """`values` with every identity longer than its column fitted to it (`values` itself, not
    a copy, when none is)."""
    bounded: list[Any] | None = None
    for index, length in _BOUNDED:
        value = values[index]
        if value is not None and len(value) > length:
            if bounded is None:
                bounded = list(values)
            bounded[index] = fitted(value, length)
    return values if bounded is None else bounded


def fitted(value: str, length: int) -> str:
    """`value` in at most `length` characters: its start, `~`, and 16 hex digits of its hash."""
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"{value[:length - 17]}~{digest}"


def utc_day(ts: float) -> str:
    # Formatted once per day, not per record (math.floor raises for NaN and infinities, as
    # datetime.fromtimestamp does).
    return _day_text(math.floor(ts / 86400.0))


@functools.lru_cache(maxsize=64)
def _day_text(day: int) -> str:
    return datetime.fromtimestamp(day * 86400, tz=UTC).strftime("%Y-%m-%d")


_DIMENSION_LENGTH = cast(int, cast(String, usage_dimensions.c.value.type).length)
# Control characters (C0, DEL, C1) and lone surrogates: no log line or database should see them.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def dimension_values(values: Iterable[str]) -> tuple[str, ...]:
    """Claim values as a usage dimension stores them: control characters dropped, each fitted
    to its column (a long value stays distinct), distinct and sorted; empty ones left out."""
    cleaned = {_UNPRINTABLE.sub("", value) for value in values}
    return tuple(sorted({value if len(value) <= _DIMENSION_LENGTH
                         else fitted(value, _DIMENSION_LENGTH) for value in cleaned if value}))
