"""What every limiter offers, and the `Lease` a granted request holds until its reply ends.

`acquire(quotas, now, member)` counts the request against every quota at once (all or nothing)
and raises `RateLimited` when one is spent; `settle(lease, tokens, cost)` adds the real usage.
The lease's `headers()` are OpenAI's `x-ratelimit-*` headers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from rolegate.errors import RateLimited
from rolegate.limits.quota import Quota


@dataclass(frozen=True, slots=True)
class Standing:
    """A quota after this request was counted: how much is used and when it frees up."""

    quota: Quota
    used: float
    reset_in: float

    @property
    def remaining(self) -> float:
        return max(0.0, self.quota.limit - self.used)


@dataclass(frozen=True, slots=True)
class Lease:
    standings: tuple[Standing, ...]

    @property
    def quotas(self) -> list[Quota]:
        return [standing.quota for standing in self.standings]

    def headers(self) -> list[tuple[bytes, bytes]]:
        return ratelimit_headers(self.standings)


NO_LEASE = Lease(())


class Limiter(Protocol):
    async def acquire(self, quotas: Sequence[Quota], now: float, member: str) -> Lease: ...

    async def settle(self, lease: Lease, tokens: int, cost: float) -> None: ...

    async def close(self) -> None: ...


def refuse(standings: Sequence[Standing], spent: Standing) -> RateLimited:
    quota = spent.quota
    what = {"requests": "requests per minute", "tokens": "tokens",
            "cost": "USD budget"}[quota.kind]
    return RateLimited(f"Rate limit reached: {quota.limit:g} {what} ({quota.code}). "
                       f"Try again in {spent.reset_in:.0f} s.", retry_after=spent.reset_in,
                       code=quota.code, headers=ratelimit_headers(standings))


def ratelimit_headers(standings: Sequence[Standing]) -> list[tuple[bytes, bytes]]:
    headers: list[tuple[bytes, bytes]] = []
    for kind, suffix in (("requests", b"requests"), ("tokens", b"tokens")):
        candidates = [s for s in standings if s.quota.kind == kind]
        if not candidates:
            continue
        tightest = min(candidates, key=lambda s: (s.remaining, -s.reset_in))
        headers += [(b"x-ratelimit-limit-" + suffix, b"%d" % tightest.quota.limit),
                    (b"x-ratelimit-remaining-" + suffix, b"%d" % tightest.remaining),
                    (b"x-ratelimit-reset-" + suffix, duration(tightest.reset_in).encode())]
    return headers


def duration(seconds: float) -> str:
    """OpenAI's reset format: `20ms`, `1s`, `6m0s`, `1h2m3s`."""
    if seconds < 1:
        return f"{max(0, round(seconds * 1000))}ms"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"
