"""Every refusal in the shape of the API whose path was called, whatever the path, method or
credential: Anthropic's on `/v1/messages` and anything under it, Google's under `/v1beta/`,
OpenAI's elsewhere; never a 5xx, and nothing refused reaches the upstream.
"""

from __future__ import annotations

from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from tests.fuzz.conftest import INFERENCE_ROLE, INFO_ROLE, Reply, call, fuzz_settings

PREFIXES = ("/v1/messages", "/messages", "/v1beta/", "/v1beta/models/", "/v1/", "/v1/chat",
            "/openai/deployments/", "/admin/")
SUFFIXES = ("", "/", "/batches", "/count_tokens", "/count_tokens/x", "allowed:generateContent",
            "secret:countTokens", "allowed:GenerateContent", "files", "models", "x", "/../models",
            "allowed", "completions")
ANTHROPIC_PATHS = ("/v1/messages", "/messages")


def shape_for(path: str) -> str:
    """The surface a path belongs to, stated independently of the gateway's own rule."""
    if any(path == base or path.startswith(base + "/") for base in ANTHROPIC_PATHS):
        return "anthropic"
    return "google" if path.startswith("/v1beta/") else "openai"


def shape_of(reply: Reply) -> str:
    body: dict[str, Any] = reply.json()
    if body.get("type") == "error" and isinstance(body["error"]["type"], str):
        return "anthropic"
    error = body["error"]
    if isinstance(error.get("code"), int) and isinstance(error.get("status"), str):
        assert error["code"] == reply.status
        return "google"
    assert isinstance(error["code"], str) and isinstance(error["type"], str)
    return "openai"


@fuzz_settings
@given(prefix=st.sampled_from(PREFIXES), suffix=st.sampled_from(SUFFIXES) | st.text(
           alphabet="abc/:_-.%", max_size=12),
       method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"]),
       who=st.sampled_from(["none", INFERENCE_ROLE, INFO_ROLE, "garbage"]),
       body=st.sampled_from([b"", b"{", b"[]", b'{"model": "secret"}', b'{"contents": []}']))
@example(prefix="/v1/messages", suffix="/batches", method="POST", who=INFERENCE_ROLE, body=b"{}")
@example(prefix="/v1/messages", suffix="/batches", method="GET", who="none", body=b"")
@example(prefix="/messages", suffix="/count_tokens/x", method="POST", who=INFERENCE_ROLE,
         body=b"{")
async def test_a_refusal_is_in_the_shape_of_the_api_called(prefix, suffix, method, who, body,
                                                           gateway, upstream, token_for):
    path = prefix + suffix
    headers = [(b"content-type", b"application/json")]
    if who == "garbage":
        headers.append((b"x-api-key", b"not-a-token"))
    elif who != "none":
        headers.append((b"authorization", f"Bearer {token_for(who)}".encode()))
    before = len(upstream.requests)

    reply = await call(gateway, method, path, headers=headers, body=body)

    assert reply.status < 500, reply.body
    if reply.status >= 400:
        assert shape_of(reply) == shape_for(path), (path, reply.body)
        assert len(upstream.requests) == before
        assert b"Traceback" not in reply.body
