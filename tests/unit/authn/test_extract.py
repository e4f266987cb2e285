"""Finding the bearer token in the Authorization header, and spotting credentials in URLs."""

from __future__ import annotations

import pytest

from rolegate.authn.extract import bearer_token, credential, has_query_token
from rolegate.errors import Unauthenticated


@pytest.mark.parametrize("header", [b"Bearer a.b.c", b"bearer a.b.c", b"BEARER a.b.c",
                                    b"Bearer   a.b.c  ", b"bEaReR a.b.c"])
def test_bearer_scheme_is_case_insensitive_and_the_token_is_trimmed(header):
    assert bearer_token(header, max_bytes=1024) == "a.b.c"


@pytest.mark.parametrize(("header", "code"), [
    (None, "missing_token"),
    (b"", "missing_token"),
    (b"Bearer", "invalid_token"),
    (b"Bearer    ", "invalid_token"),
    (b"Basic dXNlcjpwYXNz", "invalid_token"),
    (b"Token a.b.c", "invalid_token"),
    (b"a.b.c", "invalid_token"),
    (b"Bearer\ta.b.c", "invalid_token"),
    (b"Bearer \xc3\xa9.b.c", "invalid_token"),
], ids=["absent", "empty", "scheme-only", "scheme-and-spaces", "basic", "other-scheme",
        "bare-token", "tab", "not-ascii"])
def test_anything_but_a_bearer_token_is_refused(header, code):
    with pytest.raises(Unauthenticated) as caught:
        bearer_token(header, max_bytes=1024)
    assert caught.value.code == code


def test_header_over_the_limit_is_refused_without_reading_it():
    with pytest.raises(Unauthenticated) as caught:
        bearer_token(b"Bearer " + b"a" * 100, max_bytes=100)
    assert caught.value.code == "invalid_token"
    assert "100 bytes" in caught.value.message
    assert bearer_token(b"Bearer " + b"a" * 93, max_bytes=100) == "a" * 93


@pytest.mark.parametrize(("query", "expected"), [
    (b"", False),
    (b"api-version=2024-10-21", False),
    (b"access_token=abc", True),
    (b"ACCESS_TOKEN=abc", True),
    (b"x=1&token=abc", True),
    (b"api_key=abc", True),
    (b"api-key=abc", True),
    (b"key=abc", True),
    (b"access_token", True),
    (b"monkey=1&tokens=2", False),
    (b"api-version=2024-10-21&x-api-key=abc", True),
    (b"access%5Ftoken=abc", True),
    (b"access%5ftoken=abc", True),
    (b"ACCESS%5FTOKEN=abc", True),
    (b"%61pi_key=abc", True),
    (b"access+token=abc", True),
    (b"access.token=abc", True),
    (b"to%00ken=abc", True),
    (b"x=1;token=abc", True),
    (b"api%252Dkey=abc", True),
    (b"acc%2525252Fess_token=abc", True),
    (b"access%25255Ftoken=abc", True),
    ("to\u212aen=abc".encode(), True),
    (b"to%E2%84%AAen=abc", True),
    ("\uff54oken=abc".encode(), True),
    (b"%ff%fe=1&n=%25", False),
    (b"100%=1&a+b=2", False),
], ids=lambda value: value.decode("utf-8", "replace") if isinstance(value, bytes) else None)
def test_credentials_in_the_query_string_are_spotted(query, expected):
    """Names are compared URL-decoded and case-folded as servers read them."""
    assert has_query_token(query) is expected


# --- API keys in `api-key` / `x-api-key` / `x-goog-api-key` -----------------------------------

@pytest.mark.parametrize("name", [b"api-key", b"x-api-key", b"x-goog-api-key"])
def test_an_api_key_header_is_read_and_trimmed(name):
    assert credential({name: b"  rg-abc  "}, max_bytes=64) == "rg-abc"


def test_a_bearer_token_is_the_credential_without_a_key_header():
    assert credential({b"authorization": b"Bearer a.b.c"}, max_bytes=64) == "a.b.c"


def test_an_api_key_header_over_the_limit_is_refused():
    with pytest.raises(Unauthenticated) as caught:
        credential({b"x-api-key": b"k" * 65}, max_bytes=64)
    assert caught.value.code == "invalid_api_key"
    assert str(caught.value) == "The x-api-key header is longer than 64 bytes."


def test_a_non_ascii_api_key_is_refused():
    with pytest.raises(Unauthenticated) as caught:
        credential({b"api-key": "rg-clé".encode()}, max_bytes=64)
    assert caught.value.code == "invalid_api_key"
    assert str(caught.value) == "The API key is not ASCII."


@pytest.mark.parametrize(("header", "message"), [
    (None, "No credential was sent. Send `Authorization: Bearer <token>`."),
    (b"Basic dXNlcjpwYXNz", "The Authorization header must use the Bearer scheme."),
    (b"Bearer \xc3\xa9.b.c", "The bearer token is not ASCII."),
    (b"Bearer " + b"a" * 100, "The Authorization header is longer than 100 bytes."),
], ids=["missing", "other-scheme", "not-ascii", "too-long"])
def test_each_refusal_tells_the_caller_what_to_fix(header, message):
    with pytest.raises(Unauthenticated) as caught:
        bearer_token(header, max_bytes=100)
    assert str(caught.value) == message


def test_a_header_of_exactly_the_limit_is_read():
    assert bearer_token(b"Bearer " + b"a" * 93, max_bytes=100) == "a" * 93
    assert credential({b"api-key": b"k" * 64}, max_bytes=64) == "k" * 64


@pytest.mark.parametrize("query", [b"access_token=YWJj==", b"key=a=b", b"x=1&token=t=="],
                         ids=["padded-value", "value-with-equals", "second-parameter"])
def test_a_credential_whose_value_contains_equals_signs_is_still_spotted(query):
    assert has_query_token(query) is True


@pytest.mark.parametrize("headers", [
    {b"authorization": b"Bearer rg-one", b"x-api-key": b"rg-two"},
    {b"authorization": b"Bearer rg-one", b"x-goog-api-key": b"rg-two"},
    {b"api-key": b"rg-one", b"x-api-key": b"rg-two"},
    {b"x-api-key": b"rg-one", b"x-goog-api-key": b"rg-two"},
    {b"authorization": b"Bearer rg-one", b"api-key": b"rg-one", b"x-goog-api-key": b"rg-two"},
], ids=["bearer-and-x-api-key", "bearer-and-goog", "api-key-and-x-api-key", "x-api-key-and-goog",
        "three-one-differs"])
def test_two_different_credentials_are_refused_whichever_headers_carry_them(headers):
    """No precedence rule picks one: a request naming two callers is nobody's."""
    with pytest.raises(Unauthenticated) as caught:
        credential(headers, max_bytes=64)
    assert caught.value.code == "ambiguous_credentials"


@pytest.mark.parametrize("headers", [
    {b"authorization": b"Bearer rg-one", b"x-api-key": b"rg-one"},
    {b"x-goog-api-key": b" rg-one ", b"api-key": b"rg-one"},
    {b"x-api-key": b"", b"x-goog-api-key": b"rg-one"},
    {b"x-goog-api-key": b"rg-one", b"api-key": b"  "},
], ids=["bearer-and-same-key", "same-key-twice", "empty-x-api-key", "blank-api-key"])
def test_the_same_credential_in_several_headers_or_beside_empty_ones_is_read(headers):
    assert credential(headers, max_bytes=64) == "rg-one"


def test_an_empty_authorization_is_a_missing_token_even_beside_a_key_header():
    with pytest.raises(Unauthenticated) as caught:
        credential({b"authorization": b"", b"x-api-key": b"rg-one"}, max_bytes=64)
    assert caught.value.code == "missing_token"
