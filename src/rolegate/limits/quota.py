"""`Quota`: one limit on one counter, and `QuotaPlan`, which finds the quotas of a request.

Requests are counted in a sliding 60-second window (a log of request times), so `rpm: 60` means
at most 60 requests in any minute. Tokens and cost can only be counted after a reply, so they
use fixed windows (the clock minute, the UTC day, the UTC month): a request is refused when its
window is already spent, and the real usage is added once the reply has ended. Counters are
keyed by the granting rule and the principal (and the end user with `per_end_user`); a key's own
limits count on the key.

No value from a request or a token is ever part of a key as written: the subject, the end user
and the key id are hashed together with the rule (`counter_base`), so a crafted value (`}`, `:`,
`{`, megabytes of text) can neither reach another counter nor change the key's shape. Each base
is one Redis Cluster hash tag (`{r:…}`), so one request's counters share a slot.
"""

from __future__ import annotations

import calendar
import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import orjson

from rolegate.authn.principal import Principal
from rolegate.config.model import LimitConfig, RuleConfig

MINUTE = 60.0
Kind = Literal["requests", "tokens", "cost"]


@dataclass(frozen=True, slots=True)
class Quota:
    counter: str
    kind: Kind
    limit: float
    window: float     # requests: the sliding window's length; others: unused
    reset_at: float   # tokens and cost: when the fixed window ends
    code: str         # the error code when this quota is spent


def quotas_of(limits: LimitConfig, base: str, now: float) -> list[Quota]:
    moment = datetime.fromtimestamp(now, tz=UTC)
    minute = int(now // MINUTE)
    quotas = []
    if limits.rpm is not None:
        quotas.append(Quota(f"{base}:rpm", "requests", limits.rpm, MINUTE, 0.0,
                            "requests_per_minute"))
    if limits.tpm is not None:
        quotas.append(Quota(f"{base}:tpm:{minute}", "tokens", limits.tpm, 0.0,
                            (minute + 1) * MINUTE, "tokens_per_minute"))
    if limits.daily_tokens is not None:
        day_end = calendar.timegm(moment.date().timetuple()) + 86400.0
        quotas.append(Quota(f"{base}:day:{moment:%Y-%m-%d}", "tokens", limits.daily_tokens, 0.0,
                            day_end, "tokens_per_day"))
    if limits.monthly_budget_usd is not None:
        year, month = ((moment.year + 1, 1) if moment.month == 12
                       else (moment.year, moment.month + 1))
        month_end = float(calendar.timegm((year, month, 1, 0, 0, 0)))
        quotas.append(Quota(f"{base}:usd:{moment:%Y-%m}", "cost", limits.monthly_budget_usd, 0.0,
                            month_end, "budget_exceeded"))
    return quotas


class QuotaPlan:
    """Limits compiled once from the policy; `quotas(rule, who, now)` per request.

    >>> plan = QuotaPlan(settings.policy, key_limits=verifier.limits_for)
    """

    def __init__(self, rules: Iterable[RuleConfig],
                 key_limits: Callable[[str], LimitConfig | None] | None = None) -> None:
        self._by_rule = {rule.name: rule.allow.limits for rule in rules
                         if rule.allow.limits is not None and not rule.allow.limits.is_empty}
        self._key_limits = key_limits

    @property
    def is_empty(self) -> bool:
        return not self._by_rule and self._key_limits is None

    def quotas(self, rule: str | None, who: Principal, now: float) -> list[Quota]:
        quotas = []
        limits = self._by_rule.get(rule) if rule is not None else None
        if limits is not None:
            base = counter_base("r", (rule, who.issuer, who.subject, _end_user(limits, who)))
            quotas += quotas_of(limits, base, now)
        if who.key_id is not None and self._key_limits is not None:
            key_limits = self._key_limits(who.key_id)
            if key_limits is not None and not key_limits.is_empty:
                base = counter_base("k", (who.key_id, _end_user(key_limits, who)))
                quotas += quotas_of(key_limits, base, now)
        return quotas


def counter_base(kind: str, parts: tuple[str | None, ...]) -> str:
    """The hash-tagged base of a caller's counters: `{kind:digest}`, one digest per distinct
    `parts` (JSON-encoded before hashing, so no two tuples encode alike)."""
    digest = hashlib.blake2b(orjson.dumps(parts), digest_size=16).hexdigest()
    return "{" + kind + ":" + digest + "}"


def _end_user(limits: LimitConfig, who: Principal) -> str | None:
    return who.end_user if limits.per_end_user and who.end_user else None
