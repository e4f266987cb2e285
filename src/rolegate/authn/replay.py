"""`ReplayCache`: the `jti`s of one issuer's tokens already accepted, each kept until its token
expires, so that with `replay_protection: true` a token is accepted once (RFC 7519 §4.1.7).

This seen-set lives in this process's memory: it is the one used when no Redis is configured,
where several gateway processes or replicas would each accept a token once. With Redis
configured (`limits.backend: redis`) the set is shared instead (`shared_replay.py`). It is
bounded; when full of unexpired entries it refuses new tokens (503) rather than forget old ones,
because forgetting would let a replay through.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Protocol

from rolegate.errors import ServiceUnavailable, Unauthenticated

MAX_JTI_LENGTH = 256
MAX_ENTRIES = 1_000_000


class ReplaySet(Protocol):
    """Where an issuer's accepted `jti`s are kept: this process (`ReplayCache`) or Redis."""

    async def claim_once(self, jti: object, expires: float) -> None:
        """Record `jti` as used until `expires`; `Unauthenticated` if it was used before."""


def usable_jti(jti: object) -> str:
    """`jti` when it can be recorded; else the token is refused as lacking one."""
    if not isinstance(jti, str) or not jti or len(jti) > MAX_JTI_LENGTH:
        raise Unauthenticated("The token has no usable `jti` claim, which this issuer's "
                              "replay protection requires.", code="missing_claim")
    return jti


def token_replayed() -> Unauthenticated:
    return Unauthenticated("This token was already used; it may be used only once.",
                           code="token_replayed")


class ReplayCache:
    """One issuer's accepted token ids.

    >>> replay = ReplayCache(clock=time.time)
    >>> replay.claim(claims.get("jti"), expires=claims["exp"] + leeway)  # raises on a second use
    """

    def __init__(self, clock: Callable[[], float], *, max_entries: int = MAX_ENTRIES) -> None:
        self._clock = clock
        self._max_entries = max_entries
        self._seen: dict[str, float] = {}
        self._by_expiry: list[tuple[float, str]] = []  # a heap, so sweeping is cheap

    def __len__(self) -> int:
        return len(self._seen)

    def claim(self, jti: object, expires: float) -> None:
        """Record `jti` as used until `expires`; `Unauthenticated` if it was used before."""
        jti = usable_jti(jti)
        self._sweep(self._clock())
        if jti in self._seen:
            raise token_replayed()
        if len(self._seen) >= self._max_entries:
            raise ServiceUnavailable("Too many unexpired one-time tokens are outstanding.",
                                     code="replay_cache_full")
        self._seen[jti] = expires
        heapq.heappush(self._by_expiry, (expires, jti))

    async def claim_once(self, jti: object, expires: float) -> None:
        self.claim(jti, expires)

    def _sweep(self, now: float) -> None:
        # An entry may go once its token can no longer pass the expiry check anyway.
        while self._by_expiry and self._by_expiry[0][0] < now:
            _, jti = heapq.heappop(self._by_expiry)
            self._seen.pop(jti, None)
