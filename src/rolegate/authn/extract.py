"""Finding the credential in a request: `Authorization: Bearer <token>` (RFC 6750 §2.1), or an
API key header as the Azure, Anthropic and Gemini clients send it.

Only the header is accepted: tokens in query strings (RFC 6750 §2.3) end up in access logs.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from urllib.parse import unquote_to_bytes

from rolegate.errors import Unauthenticated


def bearer_token(authorization: bytes | None, *, max_bytes: int) -> str:
    """The token in an `Authorization` header value, or `Unauthenticated`."""
    if not authorization:
        raise Unauthenticated("No credential was sent. Send `Authorization: Bearer <token>`.",
                              code="missing_token")
    if len(authorization) > max_bytes:
        raise Unauthenticated(f"The Authorization header is longer than {max_bytes} bytes.",
                              code="invalid_token")
    scheme, _, token = authorization.partition(b" ")
    if scheme.lower() != b"bearer" or not token.strip():
        raise Unauthenticated("The Authorization header must use the Bearer scheme.",
                              code="invalid_token")
    try:
        return token.strip().decode("ascii")
    except UnicodeDecodeError:
        raise Unauthenticated("The bearer token is not ASCII.", code="invalid_token") from None


# Parameter names that carry a credential, spelled plainly (letters and digits only, lower case).
_QUERY_CREDENTIALS = frozenset({b"accesstoken", b"token", b"apikey", b"xapikey", b"key"})
_MAX_DECODINGS = 3  # a name encoded more often than this is refused outright


def has_query_token(query_string: bytes) -> bool:
    """Whether the URL carries a credential (`access_token=`, `token=`, `api_key=`, `key=`).

    Names are compared as servers read them, not as sent: URL-decoded (`+`, `%5F`, encoded
    again and again), case-folded the loosest way a server does (Java's `equalsIgnoreCase`
    takes the Kelvin sign for `k`), with everything but letters and digits dropped (PHP reads
    `access.token` as `access_token`). `;` separates parameters as well as `&`, as it does for
    some servers. So `ACCESS%5Ftoken`, `api.key` or `to%00ken` are credentials too.
    """
    if not query_string:
        return False
    names = {_plain_name(part.split(b"=", 1)[0]) for part in re.split(rb"[&;]", query_string)}
    return bool(names & _QUERY_CREDENTIALS)


def _plain_name(name: bytes) -> bytes:
    for _ in range(_MAX_DECODINGS):
        decoded = unquote_to_bytes(name.replace(b"+", b" "))
        if decoded == name:
            break
        name = decoded
    else:
        if b"%" in name:  # still encoded: no plain spelling, so assume the worst
            return b"token"
    text = name.decode("utf-8", "replace")
    # Case-fold each character as Go and Java do (upper of lower: dotless i is I, long s is S),
    # then drop accents and compatibility forms (fullwidth letters).
    text = unicodedata.normalize("NFKD", text.lower().upper().lower())
    return "".join(c for c in text if c.isascii() and c.isalnum()).encode()


API_KEY_HEADERS = (b"api-key", b"x-api-key", b"x-goog-api-key")


def credential(headers: Mapping[bytes, bytes], *, max_bytes: int) -> str:
    """The request's one credential: `Authorization: Bearer`, or the value of an `api-key` /
    `x-api-key` / `x-goog-api-key` header (Azure / Anthropic / Google Gemini clients).

    Several of them may be sent only if they carry the same credential: two different ones are
    refused (401 `ambiguous_credentials`) rather than one chosen by a precedence rule that a
    proxy, a log pipeline or another gateway in front may not share, so a request never
    authenticates as one caller while naming another. A key header with an empty value counts
    as not sent; an empty Authorization header does not (it is a missing bearer token).
    """
    authorization = headers.get(b"authorization")
    found = set() if authorization is None else {bearer_token(authorization,
                                                              max_bytes=max_bytes)}
    found.update(key for key in _api_key_values(headers, max_bytes=max_bytes) if key)
    if len(found) > 1:
        raise Unauthenticated("The request carries different credentials in its Authorization "
                              "and API key headers; send one.", code="ambiguous_credentials")
    if not found:
        raise Unauthenticated("No credential was sent. Send `Authorization: Bearer <token>`.",
                              code="missing_token")
    return found.pop()


def _api_key_values(headers: Mapping[bytes, bytes], *, max_bytes: int) -> list[str]:
    values = []
    for name in API_KEY_HEADERS:
        value = headers.get(name)
        if value is None:
            continue
        if len(value) > max_bytes:
            raise Unauthenticated(f"The {name.decode()} header is longer than {max_bytes} bytes.",
                                  code="invalid_api_key")
        try:
            values.append(value.strip().decode("ascii"))
        except UnicodeDecodeError:
            raise Unauthenticated("The API key is not ASCII.", code="invalid_api_key") from None
    return values
