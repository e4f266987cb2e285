"""Fuzzing the verifier: whatever the header, payload or signature, the answer is a principal or
a typed 401, never another exception; and a changed token never verifies as something else.

Set ROLEGATE_HYPOTHESIS_EXAMPLES to run more examples (default 100 per property).
"""

from __future__ import annotations

import json
import os
from typing import Any

import jwt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rolegate.authn.verifier import JwtVerifier, TrustedIssuer
from rolegate.config.model import IssuerConfig
from rolegate.errors import Unauthenticated
from tests.support.clock import FakeClock
from tests.support.fetch import FakeKeySource
from tests.support.keys import KeyPair, claims, jwks
from tests.support.tokens import b64url, segment

EXAMPLES = int(os.environ.get("ROLEGATE_HYPOTHESIS_EXAMPLES", "100"))
PROFILE = settings(max_examples=EXAMPLES, deadline=None,
                   suppress_health_check=[HealthCheck.function_scoped_fixture,
                                          HealthCheck.too_slow])

ISS = "https://idp.example.com"
AUD = "rolegate"
JWKS_URL = f"{ISS}/keys"
NOW = 1_750_000_000.0
KEY = KeyPair.rsa("fuzz-1")

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20)
header_values = st.fixed_dictionaries(
    {}, optional={"alg": st.sampled_from(["RS256", "ES256", "HS256", "none", "PS256"])
                  | json_values,
                  "kid": st.sampled_from(["fuzz-1", "other"]) | json_values,
                  "typ": st.sampled_from(["JWT", "at+jwt"]) | json_values,
                  "crit": json_values, "jku": json_values, "jwk": json_values})
payload_values = st.fixed_dictionaries(
    {}, optional={"iss": st.just(ISS) | json_values, "aud": st.just(AUD) | json_values,
                  "exp": st.just(NOW + 60) | json_values, "nbf": json_values,
                  "iat": json_values, "sub": json_values, "roles": json_values,
                  "tid": json_values})


def verifier() -> JwtVerifier:
    config = IssuerConfig(name="idp", issuer=ISS, jwks_url=JWKS_URL, audiences=(AUD,))
    clock = FakeClock(NOW)
    source = FakeKeySource({JWKS_URL: jwks(KEY)})
    return JwtVerifier([TrustedIssuer.build(config, source, clock)], clock)


async def outcome(token: str) -> Any:
    try:
        return await verifier().verify(token)
    except Unauthenticated as refused:
        return refused


@PROFILE
@given(header=header_values, payload=payload_values | json_values,
       signature=st.binary(max_size=300))
async def test_any_unsigned_token_is_a_typed_401(header, payload, signature):
    token = f"{segment(header)}.{segment(json.dumps(payload).encode())}.{b64url(signature)}"
    assert isinstance(await outcome(token), Unauthenticated)


@PROFILE
@given(header=header_values, payload=payload_values)
async def test_any_token_signed_by_the_published_key_is_a_principal_or_a_typed_401(header,
                                                                                  payload):
    header = {k: v for k, v in header.items() if k not in ("alg", "crit")}
    try:
        token = jwt.api_jws.encode(json.dumps(payload).encode(), KEY.private_key,
                                   algorithm="RS256", headers=header)
    except (TypeError, ValueError, jwt.PyJWTError):
        return  # PyJWT will not produce it; nothing to send
    result = await outcome(token)
    assert isinstance(result, Unauthenticated) or result.issuer == "idp"


@pytest.fixture(scope="module")
def good_token() -> str:
    return KEY.sign(claims(ISS, AUD, now=NOW, roles=["reader"]))


@PROFILE
@given(position=st.integers(min_value=0), replacement=st.sampled_from("AQgw_-9zZ."))
async def test_changing_one_character_never_yields_a_different_principal(good_token, position,
                                                                          replacement):
    position %= len(good_token)
    changed = good_token[:position] + replacement + good_token[position + 1:]
    original = await verifier().verify(good_token)

    result = await outcome(changed)

    if not isinstance(result, Unauthenticated):
        # Only a change to the unused low bits of the last base64 character decodes to the
        # same bytes; the claims are then the very same.
        assert result.roles == original.roles and dict(result.claims) == dict(original.claims)
