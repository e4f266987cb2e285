"""Authenticator: which credential of a request is read, and which verifier it goes to."""

from __future__ import annotations

import pytest

from rolegate.authn.authenticator import Authenticator
from rolegate.authn.principal import Principal
from rolegate.errors import Unauthenticated

JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzIn0.c2ln"
KEY = "rg-" + "k" * 40
LIMIT = 200


class Recording:
    """A verifier that accepts everything and remembers what it was given."""

    def __init__(self, issuer: str) -> None:
        self.issuer = issuer
        self.seen: list[str] = []

    async def verify(self, token: str) -> Principal:
        self.seen.append(token)
        return Principal(issuer=self.issuer, subject=token[:8])


Request = tuple[dict[bytes, bytes], bytes]  # what the authenticator reads: headers and query


def request(*headers: tuple[bytes, bytes], query: bytes = b"") -> Request:
    """A request's headers (a repeated one joined, as the server joins them) and query."""
    joined: dict[bytes, bytes] = {}
    for name, value in headers:
        joined[name] = joined[name] + b"," + value if name in joined else value
    return joined, query


@pytest.fixture
def jwts() -> Recording:
    return Recording("idp")


@pytest.fixture
def keys() -> Recording:
    return Recording("apikey")


def with_keys(jwts: Recording, keys: Recording) -> Authenticator:
    return Authenticator(jwts, max_header_bytes=LIMIT, keys=keys)  # type: ignore[arg-type]


def without_keys(jwts: Recording) -> Authenticator:
    return Authenticator(jwts, max_header_bytes=LIMIT)  # type: ignore[arg-type]


async def refused(authenticator: Authenticator, req: Request) -> Unauthenticated:
    with pytest.raises(Unauthenticated) as caught:
        await authenticator.authenticate(*req)
    return caught.value


async def test_a_bearer_jwt_goes_to_the_jwt_verifier(jwts, keys):
    principal = await with_keys(jwts, keys).authenticate(*
        request((b"authorization", f"Bearer {JWT}".encode())))
    assert principal.issuer == "idp"
    assert (jwts.seen, keys.seen) == ([JWT], [])


async def test_a_bearer_api_key_goes_to_the_key_verifier(jwts, keys):
    principal = await with_keys(jwts, keys).authenticate(*
        request((b"authorization", f"Bearer {KEY}".encode())))
    assert principal.issuer == "apikey"
    assert (jwts.seen, keys.seen) == ([], [KEY])


async def test_a_bearer_api_key_is_refused_when_keys_are_not_enabled(jwts):
    error = await refused(without_keys(jwts), request((b"authorization",
                                                        f"Bearer {KEY}".encode())))
    assert error.code == "invalid_api_key"
    assert str(error) == "API keys are not accepted by this gateway."
    assert jwts.seen == []


@pytest.mark.parametrize("header", [b"api-key", b"x-api-key"])
async def test_a_key_header_is_read_when_no_authorization_is_sent(header, jwts, keys):
    principal = await with_keys(jwts, keys).authenticate(*request((header, KEY.encode())))
    assert principal.issuer == "apikey"
    assert keys.seen == [KEY]


@pytest.mark.parametrize("header", [b"api-key", b"x-api-key"])
async def test_a_virtual_key_in_a_key_header_is_refused_when_keys_are_not_enabled(header, jwts):
    error = await refused(without_keys(jwts), request((header, KEY.encode())))
    assert error.code == "invalid_api_key"
    assert jwts.seen == []


async def test_a_bearer_token_beside_a_different_key_header_is_refused(jwts, keys):
    error = await refused(with_keys(jwts, keys), request(
        (b"authorization", f"Bearer {JWT}".encode()), (b"api-key", KEY.encode())))
    assert error.code == "ambiguous_credentials"
    assert (jwts.seen, keys.seen) == ([], [])


@pytest.mark.parametrize("value", [b"sk-upstream-provider-key", JWT.encode()],
                         ids=["vendor-key", "jwt"])
async def test_a_key_header_without_the_key_form_is_verified_as_a_jwt(value, jwts, keys):
    """`AzureOpenAI(api_key=token)` sends the JWT as `api-key`: the same check as a bearer
    token (the real verifier refuses anything that is not a valid JWT of a trusted issuer)."""
    principal = await with_keys(jwts, keys).authenticate(*request((b"x-api-key", value)))
    assert principal.issuer == "idp"
    assert (jwts.seen, keys.seen) == ([value.decode()], [])


async def test_an_empty_key_header_is_a_missing_credential(jwts, keys):
    error = await refused(with_keys(jwts, keys), request((b"x-api-key", b"")))
    assert error.code == "missing_token"
    assert (jwts.seen, keys.seen) == ([], [])


async def test_no_credential_at_all_is_missing_token(jwts, keys):
    assert (await refused(with_keys(jwts, keys), request())).code == "missing_token"


@pytest.mark.parametrize("query", [b"access_token=x", b"a=1&api_key=rg-x", b"key=v"])
async def test_a_credential_in_the_query_string_is_refused_even_with_a_good_header(
        query, jwts, keys):
    error = await refused(with_keys(jwts, keys),
                          request((b"authorization", f"Bearer {JWT}".encode()), query=query))
    assert error.code == "token_in_query"
    assert str(error) == ("Credentials in the URL are refused; send them in the "
                          "Authorization header.")
    assert (jwts.seen, keys.seen) == ([], [])


async def test_a_harmless_query_string_does_not_stop_the_header(jwts, keys):
    await with_keys(jwts, keys).authenticate(*
        request((b"authorization", f"Bearer {JWT}".encode()), query=b"stream=true"))
    assert jwts.seen == [JWT]


async def test_the_header_size_limit_applies_to_authorization(jwts, keys):
    token = "Bearer " + "a" * LIMIT
    error = await refused(with_keys(jwts, keys), request((b"authorization", token.encode())))
    assert error.code == "invalid_token"
    assert str(LIMIT) in str(error)


async def test_the_header_size_limit_applies_to_key_headers(jwts, keys):
    error = await refused(with_keys(jwts, keys), request((b"api-key", b"rg-" + b"a" * LIMIT)))
    assert error.code == "invalid_api_key"
    assert str(LIMIT) in str(error)


async def test_a_credential_just_within_the_limit_is_read(jwts, keys):
    token = "a" * (LIMIT - len("Bearer "))
    await with_keys(jwts, keys).authenticate(*request((b"authorization",
                                                      f"Bearer {token}".encode())))
    assert jwts.seen == [token]
