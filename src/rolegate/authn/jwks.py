"""`JwksCache`: one issuer's signing keys, fetched over HTTP and kept for a TTL.

- Fresh keys are served from memory; past the TTL one refresh runs, shared by every waiting
  request (single-flight).
- A token whose `kid` is unknown triggers a refresh at once, but only while a small token bucket
  allows (default 3 a minute): a key rotated right after a fetch is picked up immediately, while a
  flood of forged `kid`s causes a handful of fetches, not thousands (RFC 8725 §3.10 threat; the
  same budget as auth0's `RateLimitedJwkProvider`).
- When the identity provider cannot be reached, cached keys keep serving for `max_stale` seconds
  past their TTL; after that, and when nothing was ever fetched, requests are refused with 503.
  A failed fetch never lets a request through.
- Symmetric (`oct`) keys, encryption keys and keys of unknown type are dropped: a key set never
  yields an HMAC secret, which closes RS/HS confusion at the source.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import orjson
from jwt import PyJWK
from jwt.algorithms import AllowedPublicKeys
from jwt.exceptions import PyJWTError

from rolegate.errors import ServiceUnavailable, Unauthenticated

log = logging.getLogger("rolegate.jwks")

Fetch = Callable[[str], Awaitable[bytes]]
Clock = Callable[[], float]

MAX_KEYS = 64
RETRY_AFTER_FAILURE = 5.0
MAX_WARMING_INTERVAL = 60.0  # warming's retries back off to one a minute, no slower

# Which header algorithms a key type can verify.
_FAMILIES = {"RSA": ("RS", "PS"), "EC": ("ES",), "OKP": ("EdDSA",)}
_CURVES = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}


class KeySourceUnavailable(Exception):
    """The key set or discovery document could not be fetched or parsed."""


@dataclass(frozen=True, slots=True)
class SigningKey:
    kid: str | None
    kty: str
    alg: str | None
    curve: str | None
    key: AllowedPublicKeys  # a `cryptography` public key

    def can_verify(self, alg: str) -> bool:
        if self.alg is not None:
            return self.alg == alg
        if not alg.startswith(_FAMILIES.get(self.kty, ())):
            return False
        return self.kty != "EC" or _CURVES.get(alg) == self.curve


class TokenBucket:
    """`capacity` tokens, refilled continuously over `period` seconds."""

    def __init__(self, capacity: int, period: float, clock: Clock) -> None:
        self._capacity = float(capacity)
        self._rate = capacity / period
        self._clock = clock
        self._tokens = float(capacity)
        self._updated = clock()

    def take(self) -> bool:
        now = self._clock()
        self._tokens = min(self._capacity, self._tokens + (now - self._updated) * self._rate)
        self._updated = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True


class JwksCache:
    """Signing keys of one issuer.

    >>> cache = JwksCache("entra", jwks_url="https://…/keys", fetch=fetch, clock=time.time)
    >>> key = await cache.key_for("kid-1", "RS256")
    """

    def __init__(self, name: str, *, fetch: Fetch, clock: Clock, jwks_url: str | None = None,
                 discovery_url: str | None = None, expected_issuer: str | None = None,
                 ttl: float = 600.0, max_stale: float = 1800.0,
                 refreshes_per_minute: int = 3) -> None:
        self.name = name
        self._fetch = fetch
        self._clock = clock
        self._jwks_url = jwks_url
        self._discovery_url = discovery_url
        self._expected_issuer = expected_issuer
        self._ttl = ttl
        self._max_stale = max_stale
        self._bucket = TokenBucket(refreshes_per_minute, 60.0, clock)
        self._keys: tuple[SigningKey, ...] | None = None
        self._fetched_at = 0.0
        self._failed_at: float | None = None
        self._inflight: asyncio.Task[None] | None = None
        self.fetch_count = 0
        self.fetch_successes = 0
        self.fetch_failures = 0
        self.loaded_at: float | None = None  # clock time of the last successful fetch
        self.last_error: str | None = None  # why the last fetch failed; None after a success
        self.failures_in_a_row = 0

    @property
    def key_count(self) -> int:
        return len(self._keys or ())

    @property
    def is_loaded(self) -> bool:
        return self._keys is not None

    async def key_for(self, kid: str | None, alg: str) -> SigningKey:
        """The key that verifies a token with header `kid` and `alg`, or an error."""
        now = self._clock()
        if self._keys is None or now >= self._fetched_at + self._ttl:
            await self._refresh_expired(now)
        key = self._find(kid, alg)
        if key is None and self._bucket.take():
            await self._refresh_quietly()
            key = self._find(kid, alg)
        if key is None:
            raise Unauthenticated("The token was signed with a key this issuer does not publish.",
                                  code="unknown_signing_key")
        return key

    async def warm(self) -> None:
        """Fetch at start-up; a failure is logged and retried on the first request."""
        await self._refresh_quietly()

    async def warm_until_loaded(self, retry_every: float = RETRY_AFTER_FAILURE,
                                max_interval: float = MAX_WARMING_INTERVAL,
                                sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
                                ) -> None:
        """Fetch at start-up and keep retrying until a key set is loaded. Readiness depends on
        it, and an orchestrator sends no request to an unready gateway, so the retry cannot wait
        for the first request. The pause doubles after each failure, from `retry_every` up to
        `max_interval`: an issuer that stays down is not asked every few seconds forever."""
        await self._refresh_quietly()
        pause = retry_every
        # Both ways are tested (test_jwks_warming.py), but coverage on CPython 3.11 loses the
        # loop-entry arc when the awaited refresh handled a failed fetch.
        while self._keys is None:  # pragma: no branch
            await sleep(pause)
            pause = min(pause * 2, max_interval)
            if self._keys is None:
                await self._refresh_quietly()

    async def _refresh_expired(self, now: float) -> None:
        recently_failed = (self._failed_at is not None
                           and now < self._failed_at + RETRY_AFTER_FAILURE)
        if not recently_failed:
            await self._refresh_quietly()
        if self._keys is None or self._clock() >= self._fetched_at + self._ttl + self._max_stale:
            raise ServiceUnavailable(
                f"The signing keys of issuer {self.name!r} cannot be fetched right now.",
                code="jwks_unavailable")

    async def _refresh_quietly(self) -> None:
        try:
            await self.refresh()
        except KeySourceUnavailable as exc:
            self._failed_at = self._clock()
            self.last_error = str(exc)
            self.failures_in_a_row += 1
            failures = self.failures_in_a_row
            # Logged on the 1st, 2nd, 4th, 8th… failure in a row: an issuer that stays
            # unreachable fills the log ever more slowly, and each line says how long it lasts.
            if failures & (failures - 1) == 0:
                log.warning("fetching the keys of issuer %s failed (%d time(s) in a row; next "
                            "logged at %d): %s", self.name, failures, failures * 2, exc)

    async def refresh(self) -> None:
        """Fetch the key set once, however many callers are waiting for it."""
        if self._inflight is None:
            self._inflight = asyncio.ensure_future(self._fetch_and_store())
            self._inflight.add_done_callback(self._clear_inflight)
        await asyncio.shield(self._inflight)

    def _clear_inflight(self, task: asyncio.Task[None]) -> None:
        self._inflight = None
        if not task.cancelled():
            task.exception()  # retrieved here so an unawaited failure is not reported twice

    async def _fetch_and_store(self) -> None:
        self.fetch_count += 1
        try:
            url = self._jwks_url or await self._discover()
            keys = parse_key_set(await self._fetch(url))
        except KeySourceUnavailable:
            self.fetch_failures += 1
            raise
        self._keys = keys
        self._fetched_at = self.loaded_at = self._clock()
        self.fetch_successes += 1
        self._failed_at = None
        self.last_error = None
        if self.failures_in_a_row:
            log.warning("the keys of issuer %s can be fetched again, after %d failure(s) in a "
                        "row", self.name, self.failures_in_a_row)
            self.failures_in_a_row = 0
        log.info("loaded %d signing key(s) for issuer %s", len(keys), self.name)

    async def _discover(self) -> str:
        assert self._discovery_url is not None
        document = _json_object(await self._fetch(self._discovery_url), "discovery document")
        issuer, jwks_uri = document.get("issuer"), document.get("jwks_uri")
        if self._expected_issuer is not None and issuer != self._expected_issuer:
            raise KeySourceUnavailable(f"discovery names issuer {issuer!r}, "
                                       f"expected {self._expected_issuer!r}")
        if not isinstance(jwks_uri, str) or not jwks_uri.startswith(("https://", "http://")):
            raise KeySourceUnavailable("discovery document has no usable jwks_uri")
        self._jwks_url = jwks_uri
        return jwks_uri

    def _find(self, kid: str | None, alg: str) -> SigningKey | None:
        candidates = [key for key in self._keys or () if key.can_verify(alg)]
        if kid is None:
            # Without a kid, only an unambiguous key set can be used.
            return candidates[0] if len(candidates) == 1 else None
        return next((key for key in candidates if key.kid == kid), None)


def parse_key_set(document: bytes) -> tuple[SigningKey, ...]:
    """The usable signature keys of a JWKS document (RFC 7517)."""
    entries = _json_object(document, "key set").get("keys")
    if not isinstance(entries, list):
        raise KeySourceUnavailable("key set has no `keys` array")
    keys = [key for key in map(_signing_key, entries[:MAX_KEYS]) if key is not None]
    if len(entries) > MAX_KEYS:
        log.warning("key set has %d keys; only the first %d are used", len(entries), MAX_KEYS)
    return tuple(keys)


_PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")


def _signing_key(entry: object) -> SigningKey | None:
    if not isinstance(entry, dict) or entry.get("kty") not in _FAMILIES:
        return None
    if any(member in entry for member in _PRIVATE_MEMBERS):
        # A key set that publishes private key material is broken (and leaking): such an entry
        # is never used, so verification only ever runs with public keys.
        log.warning("a key set entry carries private key members; it is ignored")
        return None
    if entry.get("use", "sig") != "sig":
        return None
    kid, alg = entry.get("kid"), entry.get("alg")
    if ((kid is not None and not isinstance(kid, str))
            or (alg is not None and not isinstance(alg, str))):
        return None
    try:
        jwk = PyJWK(entry, algorithm=alg or _default_alg(entry))
    except (PyJWTError, NotImplementedError, ValueError, TypeError, KeyError):
        # One malformed entry (bad numbers, an `alg` its `kty` cannot have, `alg: none`) must
        # not take the issuer's other keys down with it.
        return None
    return SigningKey(kid=kid, kty=entry["kty"], alg=alg, curve=entry.get("crv"), key=jwk.key)


def _default_alg(entry: dict[str, object]) -> str:
    if entry["kty"] == "EC":
        by_curve = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}
        return by_curve.get(str(entry.get("crv")), "ES256")
    return "EdDSA" if entry["kty"] == "OKP" else "RS256"


def _json_object(document: bytes, what: str) -> dict[str, object]:
    try:
        value = orjson.loads(document)
    except orjson.JSONDecodeError:
        raise KeySourceUnavailable(f"{what} is not JSON") from None
    if not isinstance(value, dict):
        raise KeySourceUnavailable(f"{what} is not a JSON object")
    return value
