"""`Quota`: one limit on one counter, and `QuotaPlan`, which finds the quotas of a request.

Requests are counted in a sliding 60-second window (a log of request times), so `rpm: 60` means
at most 60 requests in any minute. Tokens and cost can only be counted after a reply, so they
use fixed windows (the clock minute, the UTC day, the UTC month): a request is refused when its
window is already spent, and the real usage is added once the reply has ended. Counters are
keyed by the granting rule and what its limits count on (`per`: the principal by default, each
value of a claim, each of the caller's groups, or the whole rule), and the end user with
`per_end_user`; a named budget's counters are keyed by the budget, so every rule drawing on it
counts on them; a key's own limits count on the key. A caller with several groups (or claim
values) counts on each one's counter, all or nothing, as on several limits.

No value from a request or a token is ever part of a key as written: the subject, the end user,
claim values, group names and the key id are hashed together with the rule or budget
(`counter_base`), so a crafted value (`}`, `:`, `{`, megabytes of text, a list) can neither
reach another counter nor change the key's shape. Each base is one Redis Cluster hash tag
(`{r:…}`), so the counters of one limit share a slot.
"""

from __future__ import annotations

import calendar
import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import orjson

from rolegate.authn.principal import Principal
from rolegate.config.model import BudgetConfig, LimitConfig, RuleConfig, per_claim

MINUTE = 60.0
MAX_REMEMBERED = 10_000  # principals whose quotas of the current minute are kept
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


@dataclass(frozen=True, slots=True)
class Counted:
    """Limits and what they count on: `namespace` `r` (a rule's limits) or `b` (a budget), the
    rule's or budget's name, and `per` (see `config.model.PER_PATTERN`)."""

    limits: LimitConfig
    namespace: str
    name: str
    per: str

    def bases(self, who: Principal) -> list[str]:
        """The counter bases `who` counts on: one, or one per group or claim value (a caller
        with none shares the counter of callers with none)."""
        end_user = _end_user(self.limits, who)
        if self.per == "principal":
            if self.namespace == "r":  # the same counters as before `per` existed
                return [counter_base("r", (self.name, who.issuer, who.subject, end_user))]
            return [counter_base(self.namespace, (self.name, "principal", who.issuer,
                                                  who.subject, end_user))]
        values: tuple[str | None, ...]
        if self.per == "groups":
            values = tuple(sorted(who.groups)) or (None,)
        elif (path := per_claim(self.per)) is not None:
            values = who.attribute(path) or (None,)
        else:  # rule, budget: everyone together
            values = (None,)
        return [counter_base(self.namespace, (self.name, "per", self.per, value, end_user))
                for value in values]


class QuotaPlan:
    """Limits compiled once from the policy and budgets; `quotas(rule, who, now)` per request.

    >>> plan = QuotaPlan(settings.policy, key_limits=verifier.limits_for, budgets=settings.budgets)
    """

    def __init__(self, rules: Iterable[RuleConfig],
                 key_limits: Callable[[str], LimitConfig | None] | None = None,
                 budgets: Iterable[BudgetConfig] = ()) -> None:
        rules = tuple(rules)
        named = {budget.name: Counted(budget, "b", budget.name, budget.per)
                 for budget in budgets if not budget.is_empty}
        self._by_rule: dict[str, tuple[Counted, ...]] = {}
        for rule in rules:
            limits = rule.allow.limits
            counted = [Counted(limits, "r", rule.name, limits.per)
                       ] if limits is not None and not limits.is_empty else []
            counted += [named[name] for name in rule.allow.budgets if name in named]
            if counted:
                self._by_rule[rule.name] = tuple(counted)
        self._key_limits = key_limits
        self._tools = {rule.name: rule.allow.mcp.limits for rule in rules
                       if rule.allow.mcp is not None and rule.allow.mcp.limits is not None}
        # (rule, id(principal)) -> (principal, minute, its quotas of that rule in that minute).
        # The verifier hands out one `Principal` object per token, and a minute's quotas are the
        # same for every request in it (a day and a month also start on a minute); holding the
        # principal keeps its id from being reused while the entry exists (as the policy's memo).
        self._remembered: dict[tuple[str | None, int],
                               tuple[Principal, int, tuple[Quota, ...]]] = {}

    def _rule_quotas(self, rule: str | None, who: Principal, now: float) -> tuple[Quota, ...]:
        minute = int(now // MINUTE)
        key = (rule, id(who))
        remembered = self._remembered.get(key)
        if remembered is not None and remembered[0] is who and remembered[1] == minute:
            return remembered[2]
        quotas: list[Quota] = []
        for counted in self.counted(rule):
            for base in counted.bases(who):
                quotas += quotas_of(counted.limits, base, now)
        if len(self._remembered) >= MAX_REMEMBERED and key not in self._remembered:
            del self._remembered[next(iter(self._remembered))]  # the oldest entry
        self._remembered[key] = (who, minute, tuple(quotas))
        return self._remembered[key][2]

    @property
    def is_empty(self) -> bool:
        return not self._by_rule and self._key_limits is None

    def tool_counted(self, rule: str | None, server: str, tool: str) -> Counted | None:
        """The limit a call of `tool` on `server` granted by `rule` counts on: its own counter
        per tool (namespace `t`), whatever the rule's other limits."""
        limits = self._tools.get(rule) if rule is not None else None
        if limits is None:
            return None
        name = orjson.dumps([rule, server, tool]).decode()
        return Counted(limits.as_limits(), "t", name, limits.per)

    def tool_quotas(self, rule: str | None, who: Principal, server: str, tool: str,
                    now: float) -> list[Quota]:
        counted = self.tool_counted(rule, server, tool)
        if counted is None:
            return []
        return [quota for base in counted.bases(who)
                for quota in quotas_of(counted.limits, base, now)]

    def counted(self, rule: str | None) -> tuple[Counted, ...]:
        """The limits and budgets a request granted by `rule` counts on."""
        return self._by_rule.get(rule, ()) if rule is not None else ()

    def quotas(self, rule: str | None, who: Principal, now: float) -> list[Quota]:
        quotas = list(self._rule_quotas(rule, who, now))
        if who.key_id is not None and self._key_limits is not None:
            key_limits = self._key_limits(who.key_id)
            if key_limits is not None and not key_limits.is_empty:
                base = counter_base("k", (who.key_id, _end_user(key_limits, who)))
                quotas += quotas_of(key_limits, base, now)
        return quotas


def counter_base(kind: str, parts: tuple[str | None, ...]) -> str:
    """The hash-tagged base of a caller's counters: `{kind:digest}`, one digest per distinct
    `parts` (JSON-encoded before hashing, so no two tuples encode alike)."""
    try:
        encoded = orjson.dumps(parts)
    except orjson.JSONEncodeError:  # a lone surrogate (a token's JSON may hold one): escaped,
        # behind a byte no UTF-8 text holds, so it cannot encode like any other tuple
        encoded = b"\xff" + json.dumps(parts).encode()
    digest = hashlib.blake2b(encoded, digest_size=16).hexdigest()
    return "{" + kind + ":" + digest + "}"


def _end_user(limits: LimitConfig, who: Principal) -> str | None:
    return who.end_user if limits.per_end_user and who.end_user else None
