"""What every limiter offers, and the `Lease` a granted request holds until its reply ends.

`acquire(quotas, now, reservation)` counts the request against every quota at once (all or
nothing) and raises `RateLimited` when one is spent; it also adds the request's `Reservation` to
its token and cost counters, so requests running at the same time see each other's likely usage.
`settle(lease, tokens, cost)` replaces the reservation with the real usage; it never waits (a
limiter whose counters are elsewhere sends the usage with a later round trip). The lease's
`headers()` are OpenAI's `x-ratelimit-*` headers.

A request is admitted while its counters are below their limits, whatever it reserves: so the
counters, reservations included, never pass a limit by more than one reservation, however many
requests run at once; a request that uses more than it reserved adds the difference.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from rolegate.errors import RateLimited
from rolegate.limits.quota import Quota


# Standing and Lease are made for every limited request, and nothing changes one once made:
# plain slotted dataclasses, as a frozen one sets each field through `object.__setattr__`, which
# costs about three times as much.
@dataclass(slots=True)
class Standing:
    """A quota after this request was counted: how much is used and when it frees up."""

    quota: Quota
    used: float
    reset_in: float

    @property
    def remaining(self) -> float:
        return max(0.0, self.quota.limit - self.used)


@dataclass(frozen=True, slots=True)
class Reservation:
    """What a request may use, held on its token and cost counters from acquire to settle.

    >>> Reservation(tokens=1024, cost=0.01).amount("tokens")
    1024
    """

    tokens: float = 0.0
    cost: float = 0.0

    def amount(self, kind: str) -> float:
        return self.tokens if kind == "tokens" else self.cost if kind == "cost" else 0.0


NO_RESERVATION = Reservation()


@dataclass(slots=True)
class Lease:
    standings: tuple[Standing, ...]
    reservation: Reservation = NO_RESERVATION

    @property
    def quotas(self) -> list[Quota]:
        return [standing.quota for standing in self.standings]

    def headers(self) -> list[tuple[bytes, bytes]]:
        return ratelimit_headers(self.standings)


NO_LEASE = Lease(())


def settled_amounts(lease: Lease, tokens: int, cost: float) -> list[tuple[Standing, float]]:
    """What settling adds to each token and cost counter: the real usage less the reservation
    (negative when the request used less than it reserved); counters with nothing to add are
    left out."""
    reservation = lease.reservation
    out = []
    for standing in lease.standings:
        kind = standing.quota.kind
        if kind == "requests":
            continue
        amount = (float(tokens) if kind == "tokens" else cost) - reservation.amount(kind)
        if amount:
            out.append((standing, amount))
    return out


class Limiter(Protocol):
    async def acquire(self, quotas: Sequence[Quota], now: float,
                      reservation: Reservation = NO_RESERVATION) -> Lease: ...

    def settle(self, lease: Lease, tokens: int, cost: float) -> None: ...

    async def close(self) -> None: ...


def refuse(standings: Sequence[Standing], spent: Standing) -> RateLimited:
    quota = spent.quota
    what = {"requests": "requests per minute", "tokens": "tokens",
            "cost": "USD budget"}[quota.kind]
    return RateLimited(f"Rate limit reached: {quota.limit:g} {what} ({quota.code}). "
                       f"Try again in {spent.reset_in:.0f} s.", retry_after=spent.reset_in,
                       code=quota.code, headers=ratelimit_headers(standings))


def ratelimit_headers(standings: Sequence[Standing]) -> list[tuple[bytes, bytes]]:
    """Per kind (requests, tokens), the tightest quota: the least remaining, then the latest
    reset (the first of equals). One pass, no ranking tuples: this runs on every limited
    reply."""
    requests: Standing | None = None
    tokens: Standing | None = None
    for standing in standings:
        kind = standing.quota.kind
        if kind == "requests":
            if requests is None or _is_tighter(standing, requests):
                requests = standing
        elif kind == "tokens" and (tokens is None or _is_tighter(standing, tokens)):
            tokens = standing
    if requests is None:
        return [] if tokens is None else _headers(_TOKENS_HEADERS, tokens)
    headers = _headers(_REQUESTS_HEADERS, requests)
    if tokens is not None:
        headers += _headers(_TOKENS_HEADERS, tokens)
    return headers


_REQUESTS_HEADERS = (b"x-ratelimit-limit-requests", b"x-ratelimit-remaining-requests",
                     b"x-ratelimit-reset-requests")
_TOKENS_HEADERS = (b"x-ratelimit-limit-tokens", b"x-ratelimit-remaining-tokens",
                   b"x-ratelimit-reset-tokens")


def _is_tighter(standing: Standing, than: Standing) -> bool:
    remaining, other = standing.remaining, than.remaining
    return remaining < other or (remaining == other and standing.reset_in > than.reset_in)


def _headers(names: tuple[bytes, bytes, bytes], standing: Standing) -> list[tuple[bytes, bytes]]:
    limit, remaining, reset = names
    return [(limit, b"%d" % standing.quota.limit), (remaining, b"%d" % standing.remaining),
            (reset, duration_bytes(standing.reset_in))]


def duration_bytes(seconds: float) -> bytes:
    """`duration(seconds)` encoded; the text of a whole number of seconds is made once (a
    reset of a second or more is shown in whole seconds, and most replies show one of a few
    dozen)."""
    if seconds < 1:
        return b"%dms" % max(0, round(seconds * 1000))
    whole = round(seconds)
    text = _WHOLE_SECONDS.get(whole)
    if text is None:
        if len(_WHOLE_SECONDS) >= _MAX_WHOLE_SECONDS:
            _WHOLE_SECONDS.clear()
        text = _WHOLE_SECONDS[whole] = duration(whole).encode()
    return text


_WHOLE_SECONDS: dict[int, bytes] = {}
_MAX_WHOLE_SECONDS = 4096


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
