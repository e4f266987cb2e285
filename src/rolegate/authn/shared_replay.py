"""`RedisReplaySet`: one issuer's accepted `jti`s kept in Redis, so a one-time token accepted by
one gateway process or replica is refused by every other (RFC 7519 §4.1.7).

Each accepted `jti` is one key, written with `SET key 1 NX PX ttl`: the write succeeds for the
first process to present the token and fails for every later one, atomically on the server. The
key expires when its token can no longer be accepted anyway (`exp` plus the issuer's leeway).
Keys are `<limits.prefix>:jti:<SHA-256 of issuer and jti>`: a caller's `jti` never becomes part
of a key's text, and two issuers' `jti`s never collide.

When Redis cannot be reached within `limits.timeout`, the limits' `fail_open` decides, as it does
for rate limits: `false` (the default) refuses the token with 503 (its replay cannot be ruled
out); `true` falls back to this process's own set (`ReplayCache`), so a replay to this process is
still refused but one to another replica is not. Either way it is logged.

>>> shared = SharedReplay(redis, prefix="rolegate", timeout=1.0, is_fail_open=False, clock=clock)
>>> await shared.for_issuer("https://idp.example.com").claim_once(jti, expires)
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable

from redis.asyncio import Redis
from redis.exceptions import RedisError

from rolegate.authn.replay import ReplayCache, token_replayed, usable_jti
from rolegate.errors import ServiceUnavailable

log = logging.getLogger("rolegate.authn")
_FAILURES = (RedisError, OSError, asyncio.TimeoutError)


class SharedReplay:
    """The Redis connection the issuers' replay sets share, and how they fail."""

    def __init__(self, redis: Redis, *, prefix: str, timeout: float, is_fail_open: bool,
                 clock: Callable[[], float]) -> None:
        self.redis = redis
        self.prefix = prefix
        self.timeout = timeout
        self.is_fail_open = is_fail_open
        self.clock = clock

    def for_issuer(self, issuer: str) -> RedisReplaySet:
        return RedisReplaySet(self, issuer)

    async def close(self) -> None:
        await self.redis.aclose()


class RedisReplaySet:
    """One issuer's `jti`s in Redis (see the module's docstring)."""

    def __init__(self, shared: SharedReplay, issuer: str) -> None:
        self._shared = shared
        self._issuer = issuer.encode()
        self._fallback = ReplayCache(shared.clock) if shared.is_fail_open else None

    def key(self, jti: str) -> str:
        digest = hashlib.sha256(self._issuer + b"\0" + jti.encode("utf-8", "surrogatepass"))
        return f"{self._shared.prefix}:jti:{digest.hexdigest()}"

    async def claim_once(self, jti: object, expires: float) -> None:
        jti = usable_jti(jti)
        shared = self._shared
        # At least a millisecond: the verifier has refused a token whose `expires` has passed.
        ttl_ms = max(1, int((expires - shared.clock()) * 1000) + 1)
        try:
            async with asyncio.timeout(shared.timeout):
                is_first = await shared.redis.set(self.key(jti), b"1", nx=True, px=ttl_ms)
        except _FAILURES as exc:
            self._unavailable(exc, jti, expires)
            return
        if not is_first:
            raise token_replayed()

    def _unavailable(self, exc: BaseException, jti: str, expires: float) -> None:
        log.error("the replay set's Redis is unavailable: %s", str(exc) or type(exc).__name__)
        if self._fallback is None:
            raise ServiceUnavailable("One-time tokens cannot be checked for replay right now.",
                                     code="replay_check_unavailable")
        self._fallback.claim(jti, expires)
