"""`ApiKeyVerifier`: a virtual API key (`rg-...`) in, a `Principal` out, or a typed error.

A key resolves to the same `Principal` a JWT does (`issuer="apikey"`, subject = the key's owner,
its roles and scopes, `key_id`), so one policy governs both. Lookups are cached for
`keys.cache_ttl` seconds, unknown keys included (so random keys cannot hammer the database);
that TTL is how long a revocation takes to reach every replica. Concurrent requests with a key
whose entry expired share one lookup. Last-used times are collected
here and written in one batch every `keys.last_used_interval` seconds, off the request path.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.exc import SQLAlchemyError

from rolegate.authn.principal import Principal
from rolegate.config.checks import API_KEY_ISSUER
from rolegate.config.model import LimitConfig
from rolegate.errors import ServiceUnavailable, Unauthenticated
from rolegate.keys.material import MAX_KEY_LENGTH, KeyHasher
from rolegate.keys.records import ApiKey
from rolegate.storage.database import first_line

log = logging.getLogger("rolegate.keys")
_WELL_FORMED = re.compile(r"rg-[A-Za-z0-9_-]{16,125}")
MAX_CACHED = 10_000


class KeyRecords(Protocol):
    """Where keys are looked up and their last use is written: `keys.store.KeyStore`."""

    hasher: KeyHasher

    async def find(self, plaintext: str) -> ApiKey | None: ...

    async def mark_used(self, last_used: Mapping[str, float]) -> None: ...


@dataclass(slots=True)
class _Lookup:
    record: ApiKey | None
    fetched_at: float
    principal: Principal | None  # the record's, built once: the policy remembers its decisions


def principal_of(record: ApiKey) -> Principal:
    """The principal a key's record stands for (the one its plaintext resolves to)."""
    return Principal(issuer=API_KEY_ISSUER, subject=record.owner, key_id=record.id,
                     roles=frozenset(record.roles), scopes=frozenset(record.scopes),
                     allowed_models=record.models)


class ApiKeyVerifier:
    """>>> principal = await ApiKeyVerifier(store, clock, cache_ttl=3).verify("rg-...")"""

    def __init__(self, store: KeyRecords, clock: Callable[[], float], *, cache_ttl: float) -> None:
        self._store = store
        self._clock = clock
        self._cache_ttl = cache_ttl
        self._lookups: OrderedDict[bytes, _Lookup] = OrderedDict()
        self._fetching: dict[bytes, asyncio.Future[_Lookup]] = {}
        self._limits: dict[str, LimitConfig | None] = {}
        self._last_used: dict[str, float] = {}

    async def verify(self, token: str) -> Principal:
        if len(token) > MAX_KEY_LENGTH or not _WELL_FORMED.fullmatch(token):
            raise Unauthenticated("The API key is malformed.", code="invalid_api_key")
        lookup = await self._lookup(token)
        record, principal = lookup.record, lookup.principal
        now = self._clock()
        if record is None or principal is None:
            raise Unauthenticated("The API key is not known.", code="unknown_api_key")
        if record.is_revoked:
            raise Unauthenticated("The API key has been revoked.", code="api_key_revoked")
        if record.is_expired(now):
            raise Unauthenticated("The API key has expired.", code="api_key_expired")
        self._last_used[record.id] = now
        return principal

    def limits_for(self, key_id: str) -> LimitConfig | None:
        """The limits of a key this verifier has resolved (as fresh as its cache)."""
        return self._limits.get(key_id)

    async def flush_last_used(self) -> None:
        marks, self._last_used = self._last_used, {}
        try:
            await self._store.mark_used(marks)
        except (SQLAlchemyError, OSError) as exc:
            log.warning("could not write last-used times of %d keys: %s", len(marks),
                        first_line(exc))

    async def _lookup(self, token: str) -> _Lookup:
        # Cached under a plain SHA-256 of the key (the keys are random, so it cannot be
        # reversed): cheaper than the peppered HMAC the store looks keys up by.
        digest = hashlib.sha256(token.encode()).digest()
        cached = self._lookups.get(digest)
        if cached is not None and self._clock() - cached.fetched_at < self._cache_ttl:
            return cached
        # One database lookup per key at a time: the requests that find it expired together
        # wait for the same one (shielded: a caller that leaves does not cancel it for the rest).
        fetching = self._fetching.get(digest)
        if fetching is None:
            fetching = self._fetching[digest] = asyncio.ensure_future(self._fetch(token, digest))
            fetching.add_done_callback(lambda _: self._fetching.pop(digest, None))
        return await asyncio.shield(fetching)

    async def _fetch(self, token: str, digest: bytes) -> _Lookup:
        try:
            record = await self._store.find(token)
        except (SQLAlchemyError, OSError) as exc:
            log.error("API key lookup failed: %s", first_line(exc))
            raise ServiceUnavailable("API keys cannot be checked right now.",
                                     code="key_store_unavailable") from None
        lookup = self._lookups[digest] = _Lookup(
            record, self._clock(), None if record is None else principal_of(record))
        self._lookups.move_to_end(digest)
        if len(self._lookups) > MAX_CACHED:
            self._lookups.popitem(last=False)
        if record is not None:
            self._limits[record.id] = record.limits
        return lookup
