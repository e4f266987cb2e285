"""`RuleMatches`: which principals each policy rule granted recently, with counts and the last
time, kept in the process's memory for the console's Policy page.

Bounded: at most `capacity` (rule, principal) pairs; past that the pair seen longest ago is
forgotten, so a flood of distinct callers costs a fixed amount of memory.

>>> matches = RuleMatches(capacity=2000, clock=time.time)
>>> matches.record("admins", principal)
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from rolegate.authn.principal import Principal


@dataclass(slots=True)
class RuleMatch:
    rule: str
    issuer: str
    subject: str
    count: int
    last_seen: float


class RuleMatches:
    def __init__(self, *, capacity: int, clock: Callable[[], float]) -> None:
        self._capacity = capacity
        self._clock = clock
        self._seen: OrderedDict[tuple[str, str, str], RuleMatch] = OrderedDict()

    def record(self, rule: str, who: Principal) -> None:
        key = (rule, who.issuer, who.subject)
        match = self._seen.get(key)
        if match is None:
            match = self._seen[key] = RuleMatch(rule, who.issuer, who.subject, 0, 0.0)
        match.count += 1
        match.last_seen = self._clock()
        self._seen.move_to_end(key)
        if len(self._seen) > self._capacity:
            self._seen.popitem(last=False)

    def by_rule(self) -> dict[str, list[RuleMatch]]:
        """Each rule's matches, the most recent first."""
        rules: dict[str, list[RuleMatch]] = {}
        for match in reversed(self._seen.values()):
            rules.setdefault(match.rule, []).append(match)
        return rules
