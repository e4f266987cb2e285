"""Finding the credential in a request: `Authorization: Bearer <token>` (RFC 6750 §2.1).

Only the header is accepted: tokens in query strings (RFC 6750 §2.3) end up in access logs.
"""

from __future__ import annotations

from collections.abc import Mapping

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


def has_query_token(query_string: bytes) -> bool:
    """Whether the URL carries a credential (`access_token=`, `token=`, `api_key=`, `key=`)."""
    if not query_string:
        return False
    names = {part.split(b"=", 1)[0].lower() for part in query_string.split(b"&")}
    return bool(names & {b"access_token", b"token", b"api_key", b"api-key", b"key"})


API_KEY_HEADERS = (b"api-key", b"x-api-key")


def api_key_header(headers: Mapping[bytes, bytes], *, max_bytes: int) -> str | None:
    """The value of an `api-key` / `x-api-key` header (Azure / Anthropic clients), if sent."""
    for name in API_KEY_HEADERS:
        value = headers.get(name)
        if value is None:
            continue
        if len(value) > max_bytes:
            raise Unauthenticated(f"The {name.decode()} header is longer than {max_bytes} bytes.",
                                  code="invalid_api_key")
        try:
            return value.strip().decode("ascii")
        except UnicodeDecodeError:
            raise Unauthenticated("The API key is not ASCII.", code="invalid_api_key") from None
    return None
