"""The error table: one class per HTTP outcome, rendered as OpenAI-shaped JSON with the headers
RFC 6750 asks for."""

from __future__ import annotations

import json

import orjson
import pytest

from rolegate.server.asgi import error_response
from rolegate.errors import (
    GatewayError, InvalidRequest, MethodNotAllowed, ModelNotFound, NotFound, PayloadTooLarge,
    PermissionDenied, RateLimited, ServiceUnavailable, Unauthenticated, UpstreamError,
    UpstreamTimeout, anthropic_error_body, error_body, internal_error,
)


@pytest.mark.parametrize(("error", "status", "kind", "code"), [
    (InvalidRequest("m"), 400, "invalid_request_error", "invalid_body"),
    (Unauthenticated("m"), 401, "authentication_error", "invalid_token"),
    (PermissionDenied("m"), 403, "permission_error", "insufficient_scope"),
    (NotFound("m"), 404, "invalid_request_error", "not_found"),
    (ModelNotFound("m"), 404, "invalid_request_error", "model_not_found"),
    (MethodNotAllowed("m", allow=("GET",)), 405, "invalid_request_error", "method_not_allowed"),
    (PayloadTooLarge("m"), 413, "invalid_request_error", "body_too_large"),
    (RateLimited("m", retry_after=2.4), 429, "rate_limit_error", "rate_limited"),
    (UpstreamError("m"), 502, "api_error", "upstream_error"),
    (ServiceUnavailable("m"), 503, "api_error", "service_unavailable"),
    (UpstreamTimeout("m"), 504, "api_error", "upstream_timeout"),
    (GatewayError("m"), 500, "api_error", "internal_error"),
])
def test_each_error_class_has_its_status_type_and_default_code(error, status, kind, code):
    assert (error.status, error.type, error.code) == (status, kind, code)
    assert json.loads(error_body(error)) == {
        "error": {"message": "m", "type": kind, "param": None, "code": code}}


def test_code_and_param_can_be_given():
    error = InvalidRequest("bad model", code="invalid_model", param="model")
    assert json.loads(error_body(error))["error"] == {
        "message": "bad model", "type": "invalid_request_error", "param": "model",
        "code": "invalid_model"}


def test_401_carries_an_invalid_token_challenge():
    response = error_response(Unauthenticated("m", code="token_expired"))
    assert response.status == 401
    assert response.headers == [
        (b"www-authenticate", b'Bearer realm="rolegate", error="invalid_token"')]


def test_403_carries_an_insufficient_scope_challenge():
    assert error_response(PermissionDenied("m")).headers == [
        (b"www-authenticate", b'Bearer realm="rolegate", error="insufficient_scope"')]


@pytest.mark.parametrize(("seconds", "header"), [(2.4, b"2"), (0.1, b"1"), (59.6, b"60")])
def test_429_carries_retry_after_in_whole_seconds_of_at_least_one(seconds, header):
    assert RateLimited("m", retry_after=seconds).headers() == [(b"retry-after", header)]


@pytest.mark.parametrize("error", [InvalidRequest("m"), UpstreamError("m"), NotFound("m")])
def test_other_errors_carry_no_challenge(error):
    assert error.headers() == []


def test_internal_error_tells_the_caller_nothing_of_the_failure():
    body = json.loads(error_body(internal_error()))
    assert body["error"]["code"] == "internal_error"
    assert body["error"]["message"] == "The gateway failed to handle this request."


def test_405_lists_the_allowed_methods():
    response = error_response(MethodNotAllowed("m", allow=("GET", "POST")))
    assert response.headers == [(b"allow", b"GET, POST")]


def test_challenges_name_the_resource_metadata_and_the_scope_that_would_grant():
    unauthenticated = Unauthenticated("m")
    unauthenticated.resource_metadata = "https://gw/.well-known/oauth-protected-resource/mcp/a"
    denied = PermissionDenied("m")
    denied.scope = "forge.admin forge.read"

    assert error_response(unauthenticated).headers[0] == (b"www-authenticate", (
        b'Bearer realm="rolegate", error="invalid_token", '
        b'resource_metadata="https://gw/.well-known/oauth-protected-resource/mcp/a"'))
    assert error_response(denied).headers[0] == (b"www-authenticate", (
        b'Bearer realm="rolegate", error="insufficient_scope", '
        b'scope="forge.admin forge.read"'))


@pytest.mark.parametrize(("error", "kind"), [
    (InvalidRequest("x"), "invalid_request_error"), (Unauthenticated("x"), "authentication_error"),
    (PermissionDenied("x"), "permission_error"), (ModelNotFound("x"), "not_found_error"),
    (PayloadTooLarge("x"), "request_too_large"),
    (RateLimited("x", retry_after=1), "rate_limit_error"),
    (ServiceUnavailable("x"), "overloaded_error"), (UpstreamTimeout("x"), "timeout_error"),
    (UpstreamError("x"), "api_error"), (internal_error(), "api_error"),
])
def test_the_anthropic_shape_names_anthropics_type_for_the_same_status(error, kind):
    assert orjson.loads(anthropic_error_body(error)) == {
        "type": "error", "error": {"type": kind, "message": error.message}}
