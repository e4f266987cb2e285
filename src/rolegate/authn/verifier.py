"""`JwtVerifier`: a bearer JWT in, a `Principal` out, or a typed error.

The order follows RFC 8725 and Envoy's `jwt_authn`: the issuer is chosen from the unverified
`iss` before any key is touched; the header `alg` must be on that issuer's allow-list (so `none`
and HS* never reach a key); the key comes only from the issuer's configured key set (`jku`,
`x5u`, `jwk` and `x5c` headers are ignored, RFC 8725 §3.10); then signature, audience, issuer,
time and tenant are checked. Time comes from the injected clock, not from PyJWT.
"""

from __future__ import annotations

import math
import re
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import jwt
from jwt.exceptions import (
    DecodeError, InvalidAudienceError, InvalidIssuerError, InvalidSignatureError,
    MissingRequiredClaimError, PyJWTError,
)

from rolegate.authn.claims import ClaimMapping
from rolegate.authn.jwks import Fetch, JwksCache, SigningKey
from rolegate.authn.principal import Principal
from rolegate.authn.replay import ReplayCache, ReplaySet, token_replayed
from rolegate.config.model import TENANT_PLACEHOLDER, IssuerConfig
from rolegate.errors import Unauthenticated

_KID = re.compile(r"[A-Za-z0-9._~+/=:-]{1,256}")
_GUID_LIKE = r"[0-9A-Za-z-]{1,64}"
MAX_TOKEN_CACHE = 10_000


@dataclass(frozen=True, slots=True)
class TrustedIssuer:
    """An issuer compiled for verification: its config, keys and claim mapping."""

    config: IssuerConfig
    keys: JwksCache
    mapping: ClaimMapping
    iss_pattern: re.Pattern[str] | None  # templates only: captures the tenant from `iss`
    replay: ReplaySet | None = None       # with `replay_protection`: jtis already accepted

    @classmethod
    def compile(cls, config: IssuerConfig, keys: JwksCache, replay: ReplaySet | None = None,
                attributes: tuple[str, ...] = ()) -> TrustedIssuer:
        pattern = None
        if config.is_template:
            before, _, after = config.issuer.partition(TENANT_PLACEHOLDER)
            pattern = re.compile(f"{re.escape(before)}({_GUID_LIKE}){re.escape(after)}")
        return cls(config, keys, ClaimMapping.for_issuer(config, attributes), pattern, replay)

    @classmethod
    def build(cls, config: IssuerConfig, fetch: Fetch, clock: Callable[[], float],
              attributes: tuple[str, ...] = (),
              replay_set: Callable[[IssuerConfig], ReplaySet] | None = None) -> TrustedIssuer:
        """The issuer with a key cache of its own, fetching with `fetch`; its principals carry
        the values of the claim paths in `attributes`. With `replay_protection`, its accepted
        `jti`s go to `replay_set(config)` (shared by processes), else to this process's memory."""
        cache = JwksCache(config.name, fetch=fetch, clock=clock, jwks_url=config.jwks_url,
                          discovery_url=config.discovery_url,
                          expected_issuer=None if config.is_template else config.issuer,
                          ttl=config.jwks_ttl, max_stale=config.jwks_max_stale,
                          refreshes_per_minute=config.jwks_refreshes_per_minute)
        replay: ReplaySet | None = None
        if config.replay_protection:
            replay = ReplayCache(clock) if replay_set is None else replay_set(config)
        return cls.compile(config, cache, replay, attributes)


@dataclass(slots=True)
class _Verified:
    principal: Principal
    expires: float
    issuer: TrustedIssuer
    kid: str | None
    alg: str
    key: SigningKey


class JwtVerifier:
    """Verifies tokens of several issuers.

    >>> principal = await verifier.verify(token)
    """

    def __init__(self, issuers: list[TrustedIssuer], clock: Callable[[], float]) -> None:
        self._exact = {i.config.issuer: i for i in issuers if i.iss_pattern is None}
        self._templates = [i for i in issuers if i.iss_pattern is not None]
        self._clock = clock
        self._verified: OrderedDict[str, _Verified] = OrderedDict()

    async def verify(self, token: str) -> Principal:
        cached = await self._cached(token)
        if cached is not None:
            # A token seen before is, by definition, a replay: refused without any crypto work.
            # Other spellings of the same token miss this cache and are caught by its jti below.
            if cached.issuer.replay is not None:
                raise token_replayed()
            return cached.principal
        header, unverified = _unverified_parts(token)
        issuer = self._issuer_for(unverified.get("iss"))
        alg, kid = _checked_header(header, issuer.config)
        key = await issuer.keys.key_for(kid, alg)
        claims = _decode(token, key, alg, issuer.config)
        expires = self._check_time(claims, issuer.config.leeway)
        _check_tenant(claims, issuer)
        if issuer.replay is not None:
            await issuer.replay.claim_once(claims.get("jti"), expires)
        principal = issuer.mapping.to_principal(claims)
        self._remember(token, _Verified(principal, expires, issuer, kid, alg, key))
        return principal

    def _issuer_for(self, iss: Any) -> TrustedIssuer:
        if isinstance(iss, str):
            issuer = self._exact.get(iss)
            if issuer is not None:
                return issuer
            for candidate in self._templates:
                assert candidate.iss_pattern is not None
                if candidate.iss_pattern.fullmatch(iss):
                    return candidate
        raise Unauthenticated("The token's issuer is not trusted by this gateway.",
                              code="unknown_issuer")

    def _check_time(self, claims: Mapping[str, Any], leeway: float) -> float:
        """Checks exp/nbf/iat against the clock; returns the first instant the token is refused.

        RFC 7519 §4.1.4: the token MUST NOT be accepted on or after `exp` (plus the leeway);
        §4.1.5: nor before `nbf` (less the leeway)."""
        now = self._clock()
        exp = _numeric(claims, "exp")
        if exp is None:
            raise Unauthenticated("The token has no valid `exp` claim.", code="invalid_token")
        if now >= exp + leeway:
            raise Unauthenticated("The token has expired.", code="token_expired")
        nbf = _numeric(claims, "nbf")
        if "nbf" in claims and (nbf is None or now + leeway < nbf):
            raise Unauthenticated("The token is not valid yet (`nbf`).", code="token_not_yet_valid")
        iat = _numeric(claims, "iat")
        if "iat" in claims and (iat is None or now + leeway < iat):
            raise Unauthenticated("The token was issued in the future (`iat`).",
                                  code="invalid_token")
        return exp + leeway

    async def _cached(self, token: str) -> _Verified | None:
        """A token verified before, while it and its key are still valid."""
        entry = self._verified.get(token)
        if entry is None:
            return None
        # The key must still be published: a key removed from the set stops its tokens too.
        if (self._clock() >= entry.expires
                or await entry.issuer.keys.key_for(entry.kid, entry.alg) is not entry.key):
            self._verified.pop(token, None)
            return None
        return entry

    def _remember(self, token: str, verified: _Verified) -> None:
        self._verified[token] = verified
        if len(self._verified) > MAX_TOKEN_CACHE:
            self._verified.popitem(last=False)


def _unverified_parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    if token.count(".") != 2:
        raise Unauthenticated("The bearer token is not a JWT.", code="invalid_token")
    try:
        header = jwt.get_unverified_header(token)
        payload = jwt.decode(token, options={"verify_signature": False})
    except (PyJWTError, ValueError, TypeError, RecursionError):
        raise Unauthenticated("The bearer token is not a well-formed JWT.",
                              code="invalid_token") from None
    # PyJWT has refused a payload that is not a JSON object (DecodeError) by now.
    return header, payload


def _checked_header(header: Mapping[str, Any], config: IssuerConfig) -> tuple[str, str | None]:
    alg, kid, typ = header.get("alg"), header.get("kid"), header.get("typ")
    if "crit" in header or "b64" in header:
        # RFC 7515 §4.1.11: extensions named in `crit` must be understood; none are.
        raise Unauthenticated("The token uses a JWS extension this gateway does not accept.",
                              code="invalid_token")
    if not isinstance(alg, str) or alg not in config.algorithms:
        raise Unauthenticated("The token's signing algorithm is not accepted.",
                              code="algorithm_not_allowed")
    if kid is not None and (not isinstance(kid, str) or not _KID.fullmatch(kid)):
        raise Unauthenticated("The token's `kid` header is malformed.", code="invalid_token")
    if config.token_types is not None:
        accepted = {t.lower().removeprefix("application/") for t in config.token_types}
        if not isinstance(typ, str) or typ.lower().removeprefix("application/") not in accepted:
            raise Unauthenticated("The token's `typ` header is not accepted.",
                                  code="invalid_token_type")
    return alg, kid


_ERRORS: list[tuple[type[PyJWTError], str, str]] = [
    (InvalidSignatureError, "The token's signature does not verify.", "invalid_signature"),
    (InvalidAudienceError, "The token is not meant for this gateway (`aud`).", "invalid_audience"),
    (InvalidIssuerError, "The token's issuer does not match.", "invalid_issuer"),
    (MissingRequiredClaimError, "The token lacks a required claim.", "missing_claim"),
    (DecodeError, "The bearer token is not a well-formed JWT.", "invalid_token"),
]


def _decode(token: str, key: SigningKey, alg: str, config: IssuerConfig) -> dict[str, Any]:
    required = ["exp", "iss", "aud", *config.required_claims]
    try:
        return jwt.decode(
            token, key.key, algorithms=[alg], audience=list(config.audiences),
            options={"require": required, "verify_exp": False, "verify_nbf": False,
                     "verify_iat": False, "verify_iss": False},
        )
    except PyJWTError as exc:
        for error_type, message, code in _ERRORS:
            if isinstance(exc, error_type):
                raise Unauthenticated(message, code=code) from None
        raise Unauthenticated("The token was rejected.", code="invalid_token") from None


def _check_tenant(claims: Mapping[str, Any], issuer: TrustedIssuer) -> None:
    """Entra signing keys are shared by every tenant of a cloud, so the signature alone does not
    prove the tenant: the `iss` must name the tenant in `tid`, and `tid` must be allowed."""
    allowed = issuer.config.tenants
    tid = claims.get("tid")
    if issuer.iss_pattern is not None:
        match = issuer.iss_pattern.fullmatch(str(claims.get("iss")))
        if match is None or match.group(1) != tid:
            raise Unauthenticated("The token's `iss` does not name its tenant (`tid`).",
                                  code="invalid_tenant")
    if allowed and "*" not in allowed and tid not in allowed:
        raise Unauthenticated("The token's tenant is not allowed.", code="invalid_tenant")


def _numeric(claims: Mapping[str, Any], name: str) -> float | None:
    """A NumericDate claim (RFC 7519 §2) as a finite float, or None."""
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None
