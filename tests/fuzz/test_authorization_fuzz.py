"""Property-based attacks on the `Authorization` header and on each part of a JWT.

Invariants: never a 5xx, never a traceback; a token whose header or payload bytes differ from
what the issuer signed is always a 401; the upstream never sees a refused request.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import jwt
import orjson
from hypothesis import assume, example, given
from hypothesis import strategies as st

from tests.fuzz.conftest import (
    AUDIENCE, INFERENCE_ROLE, ISSUER, assert_error_shape, call, fuzz_settings,
)

CHAT = orjson.dumps({"model": "allowed", "messages": [{"role": "user", "content": "hi"}]})
PATH = "/v1/chat/completions"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


async def post_with(gateway, authorization: bytes):
    return await call(gateway, "POST", PATH, body=CHAT,
                      headers=[(b"authorization", authorization),
                               (b"content-type", b"application/json")])


json_scalars = (st.none() | st.booleans() | st.integers() | st.text(max_size=40)
                | st.floats(allow_nan=False, allow_infinity=False)
                | st.integers(min_value=10**30, max_value=10**400))
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=12), inner, max_size=4),
                           max_leaves=20)


@fuzz_settings
@given(value=st.binary(max_size=600))
@example(value=b"")
@example(value=b"Bearer")
@example(value=b"Bearer ")
@example(value=b"bearer \xff\xfe")
@example(value=b"Basic dXNlcjpwYXNz")
@example(value=b"Bearer a.b.c")
@example(value=b"Bearer " + b"a" * 20000)
async def test_arbitrary_authorization_bytes_are_refused_with_401(value, gateway, upstream):
    reply = await post_with(gateway, value)

    assert reply.status == 401
    assert_error_shape(reply)
    assert upstream.requests == []


@fuzz_settings
@given(segments=st.lists(st.text(alphabet="ABCDEFabcdef0123456789-_=+/.", max_size=80),
                         min_size=1, max_size=5),
       scheme=st.sampled_from(["Bearer", "bearer", "BEARER", "Bearer  ", "Bearer\t"]))
async def test_jwt_shaped_garbage_is_refused_with_401(segments, scheme, gateway, upstream):
    reply = await post_with(gateway, f"{scheme} {'.'.join(segments)}".encode())

    assert reply.status == 401
    assert_error_shape(reply)
    assert upstream.requests == []


def _header_json(draw: st.DrawFn, kid: str) -> bytes:
    header: dict[str, Any] = draw(st.fixed_dictionaries({}, optional={
        "alg": st.sampled_from(["RS256", "none", "None", "HS256", "ES256", "PS256", "", "RS256 "])
        | json_values,
        "kid": st.sampled_from([kid, kid + "x", "../../etc/passwd", "' OR 1=1 --", ""])
        | json_values,
        "typ": st.sampled_from(["JWT", "at+jwt"]) | json_values,
        "jku": st.just("http://127.0.0.1:9/keys"),
        "x5u": st.just("http://127.0.0.1:9/cert"),
        "jwk": st.just({"kty": "oct", "k": "c2VjcmV0"}),
        "crit": st.lists(st.text(max_size=8), max_size=2),
        "b64": st.booleans(),
    }))
    return json.dumps(header).encode()


def _payload_json(draw: st.DrawFn, signed_payload: dict[str, Any]) -> bytes:
    choice = draw(st.sampled_from(["claims", "duplicate", "nested", "huge", "unicode", "value"]))
    if choice == "claims":
        payload = dict(signed_payload)
        for name in draw(st.lists(st.sampled_from([*sorted(payload), "roles", "scope"]),
                                  max_size=3)):
            payload[name] = draw(json_values)
        return json.dumps(payload).encode()
    if choice == "duplicate":  # the signed claims, then a second `roles`/`aud`/`iss`/`exp`
        name = draw(st.sampled_from(["roles", "aud", "iss", "exp"]))
        body = json.dumps(signed_payload)[:-1]
        return f'{body}, "{name}": {json.dumps(draw(json_values))}}}'.encode()
    if choice == "nested":
        depth = draw(st.integers(min_value=1, max_value=5000))
        return b'{"roles": ' + b"[" * depth + b"]" * depth + b"}"
    if choice == "huge":
        digits = draw(st.integers(min_value=300, max_value=5000))
        return b'{"exp": 1' + b"0" * digits + b', "iss": "' + ISSUER.encode() + b'"}'
    if choice == "unicode":
        text = draw(st.text(max_size=30))
        return json.dumps({**signed_payload, "roles": [text], "iss": ISSUER + text},
                          ensure_ascii=draw(st.booleans())).encode("utf-8", "surrogatepass")
    return json.dumps(draw(json_values)).encode()


@st.composite
def forged_tokens(draw: st.DrawFn, signed: str) -> str:
    """The signed token with its header and/or payload replaced, keeping (or mangling) its
    signature: the signature can no longer match what was signed."""
    header_b64, payload_b64, signature_b64 = signed.split(".")
    signed_payload = jwt.decode(signed, options={"verify_signature": False})
    header, payload = header_b64, payload_b64
    change = draw(st.sampled_from(["header", "payload", "both", "pad-header", "pad-payload"]))
    if change in ("header", "both"):
        header = b64(_header_json(draw, "fuzz-key"))
    if change in ("payload", "both"):
        payload = b64(_payload_json(draw, signed_payload))
    if change.startswith("pad-"):  # padding, or a stray character, on a segment
        suffix = draw(st.sampled_from(["=", "==", "===", "A", "\u00e9", " ", "%3D"]))
        if change == "pad-header":
            header += suffix
        else:
            payload += suffix
    assume((header, payload) != (header_b64, payload_b64))
    signature = draw(st.sampled_from([signature_b64, "", signature_b64[:-4],
                                      b64(b"\x00" * 256), signature_b64 + "=="]))
    return f"{header}.{payload}.{signature}"


@fuzz_settings
@given(data=st.data())
async def test_token_with_altered_header_or_payload_is_refused_with_401(
        data, gateway, upstream, token_for):
    signed = token_for(INFERENCE_ROLE)
    forged = data.draw(forged_tokens(signed))

    try:
        authorization = f"Bearer {forged}".encode("latin-1")
    except UnicodeEncodeError:
        authorization = f"Bearer {forged}".encode()
    reply = await post_with(gateway, authorization)

    assert reply.status == 401, (forged, reply.body)
    assert_error_shape(reply)
    assert upstream.requests == []


@fuzz_settings
@given(extra=st.dictionaries(st.sampled_from(["roles", "aud", "iss", "exp", "nbf", "iat", "scope",
                                              "realm_access", "groups", "tid", "sub"]),
                             json_values, max_size=4))
async def test_signed_token_with_odd_claims_is_allowed_only_with_a_valid_grant(
        extra, gateway, upstream, signing_key, clock):
    """Tokens the issuer really signed, with claims of every type: the gateway allows exactly
    when an independent reading of the claims says the token is valid and grants the role."""
    claims = {"iss": ISSUER, "aud": AUDIENCE, "exp": int(clock.now) + 600, "sub": "s",
              "roles": [INFERENCE_ROLE], **extra}
    token = jwt.api_jws.encode(json.dumps(claims).encode(), signing_key.private_key,
                               algorithm="RS256", headers={"kid": signing_key.kid})

    before = len(upstream.requests)

    reply = await post_with(gateway, f"Bearer {token}".encode())

    assert reply.status in (200, 400, 401, 403), reply.body
    if reply.status != 200:
        assert_error_shape(reply)
        assert len(upstream.requests) == before
    expected = _is_valid_and_granted(claims, clock.now)
    assert (reply.status == 200) == expected, (claims, reply.status, reply.body)


def _is_valid_and_granted(claims: dict[str, Any], now: float, leeway: float = 60) -> bool:
    def number(name: str) -> float | None:
        value = claims.get(name)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        try:
            return float(value)
        except OverflowError:
            return None

    aud, roles, sub = claims.get("aud"), claims.get("roles"), claims.get("sub")
    exp, nbf, iat = number("exp"), number("nbf"), number("iat")
    return (claims.get("iss") == ISSUER
            and (aud == AUDIENCE or (isinstance(aud, list) and AUDIENCE in aud
                                     and all(isinstance(a, str) for a in aud)))
            and isinstance(sub, str)
            and exp is not None and now < exp + leeway
            and ("nbf" not in claims or (nbf is not None and nbf <= now + leeway))
            and ("iat" not in claims or (iat is not None and iat <= now + leeway))
            and (roles == INFERENCE_ROLE or (isinstance(roles, list) and INFERENCE_ROLE in roles)))
