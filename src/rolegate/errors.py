"""The gateway's failures, one class per HTTP outcome, and the one place that renders them.

Every error a caller can see is a `GatewayError`. Its class decides the status and the OpenAI
`type`; its `code` is stable and machine-readable. `render()` turns it into the OpenAI-shaped
body `{"error": {"message", "type", "param", "code"}}` (or, for callers of the Anthropic API,
`anthropic_error_body`, and for the Gemini API's `google_error_body`: the status is the same,
only the shape differs) and the headers that go
with it (RFC 6750 §3: `WWW-Authenticate` on 401 and 403, `Retry-After` on 429).
"""

from __future__ import annotations

from typing import ClassVar

import orjson

REALM = "rolegate"


class GatewayError(Exception):
    """Base of every error rendered to a caller."""

    status: ClassVar[int] = 500
    type: ClassVar[str] = "api_error"
    default_code: ClassVar[str] = "internal_error"

    def __init__(self, message: str, *, code: str | None = None, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.param = param

    def headers(self) -> list[tuple[bytes, bytes]]:
        return []


class InvalidRequest(GatewayError):
    status, type, default_code = 400, "invalid_request_error", "invalid_body"


class Unauthenticated(GatewayError):
    """The credential is missing or not acceptable: RFC 6750 `invalid_token`. On a protected
    resource (an MCP server), `resource_metadata` is the URL of its RFC 9728 metadata, which
    the challenge names so a client can discover where to get a token."""

    status, type, default_code = 401, "authentication_error", "invalid_token"
    resource_metadata: str | None = None

    def headers(self) -> list[tuple[bytes, bytes]]:
        challenge = f'Bearer realm="{REALM}", error="invalid_token"'
        if self.resource_metadata is not None:
            challenge += f', resource_metadata="{self.resource_metadata}"'
        return [(b"www-authenticate", challenge.encode())]


class PermissionDenied(GatewayError):
    """The credential is valid but grants too little: RFC 6750 `insufficient_scope`, with the
    `scope` that would grant it when one would."""

    status, type, default_code = 403, "permission_error", "insufficient_scope"
    scope: str | None = None

    def headers(self) -> list[tuple[bytes, bytes]]:
        challenge = f'Bearer realm="{REALM}", error="insufficient_scope"'
        if self.scope:
            challenge += f', scope="{self.scope}"'
        return [(b"www-authenticate", challenge.encode())]


class NotFound(GatewayError):
    status, type, default_code = 404, "invalid_request_error", "not_found"


class ModelNotFound(NotFound):
    default_code = "model_not_found"


class MethodNotAllowed(GatewayError):
    """The path exists but not for this method; `Allow` lists the methods it takes (RFC 9110
    §15.5.6)."""

    status, type, default_code = 405, "invalid_request_error", "method_not_allowed"

    def __init__(self, message: str, *, allow: tuple[str, ...]) -> None:
        super().__init__(message)
        self.allow = allow

    def headers(self) -> list[tuple[bytes, bytes]]:
        return [(b"allow", ", ".join(self.allow).encode())]


class RequestTimeout(GatewayError):
    """The client was too slow sending its request; the connection closes (RFC 9110 §15.5.9)."""

    status, type, default_code = 408, "invalid_request_error", "body_timeout"

    def headers(self) -> list[tuple[bytes, bytes]]:
        return [(b"connection", b"close")]


class PayloadTooLarge(GatewayError):
    status, type, default_code = 413, "invalid_request_error", "body_too_large"


class RateLimited(GatewayError):
    status, type, default_code = 429, "rate_limit_error", "rate_limited"

    def __init__(self, message: str, *, retry_after: float, code: str | None = None,
                 headers: list[tuple[bytes, bytes]] | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after
        self.extra_headers = headers or []

    def headers(self) -> list[tuple[bytes, bytes]]:
        return [(b"retry-after", str(max(1, round(self.retry_after))).encode()),
                *self.extra_headers]


class UpstreamError(GatewayError):
    status, type, default_code = 502, "api_error", "upstream_error"


class ServiceUnavailable(GatewayError):
    status, type, default_code = 503, "api_error", "service_unavailable"

    def __init__(self, message: str, *, code: str | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after

    def headers(self) -> list[tuple[bytes, bytes]]:
        if self.retry_after is None:
            return []
        return [(b"retry-after", str(max(1, round(self.retry_after))).encode())]


class UpstreamTimeout(GatewayError):
    status, type, default_code = 504, "api_error", "upstream_timeout"


def error_body(error: GatewayError) -> bytes:
    """The OpenAI-shaped JSON body for `error`."""
    return orjson.dumps(
        {"error": {"message": error.message, "type": error.type, "param": error.param,
                   "code": error.code}}
    )


# Anthropic's error `type` for each status the gateway answers with (its API's own table);
# a status it names no type for is an `api_error`.
ANTHROPIC_TYPES = {400: "invalid_request_error", 401: "authentication_error",
                   403: "permission_error", 404: "not_found_error", 405: "invalid_request_error",
                   408: "timeout_error", 413: "request_too_large", 429: "rate_limit_error",
                   503: "overloaded_error", 504: "timeout_error"}


def anthropic_error_body(error: GatewayError) -> bytes:
    """The Anthropic-shaped JSON body for `error`: `{"type": "error", "error": {"type",
    "message"}}`, the status and headers unchanged."""
    return orjson.dumps({"type": "error", "error": {
        "type": ANTHROPIC_TYPES.get(error.status, "api_error"), "message": error.message}})


# Google's canonical status name for each HTTP status the gateway answers with (google.rpc.Code,
# as its JSON errors spell it); a status it names none for is INTERNAL.
GOOGLE_STATUSES = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
                   404: "NOT_FOUND", 405: "INVALID_ARGUMENT", 408: "DEADLINE_EXCEEDED",
                   409: "ABORTED", 413: "INVALID_ARGUMENT", 429: "RESOURCE_EXHAUSTED",
                   499: "CANCELLED", 501: "UNIMPLEMENTED", 502: "UNAVAILABLE",
                   503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}


def google_error_body(error: GatewayError) -> bytes:
    """The Google-shaped JSON body for `error` (the Gemini API's): `{"error": {"code",
    "message", "status", "details"}}`, the gateway's `code` as the `ErrorInfo` reason; the
    status and headers unchanged."""
    return orjson.dumps({"error": {
        "code": error.status, "message": error.message,
        "status": GOOGLE_STATUSES.get(error.status, "INTERNAL"),
        "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                     "reason": error.code or "", "domain": "rolegate"}]}})


def internal_error() -> GatewayError:
    """What a caller sees for a bug: no message text, no traceback."""
    return GatewayError("The gateway failed to handle this request.", code="internal_error")
