"""Property-based attacks on the request path, in-process, by a caller granted only route group
`info`: no spelling of a path (encoded slashes, dot segments, doubled slashes, case variants,
Azure-style deployment paths) may reach inference or admin.

uvicorn hands the app a percent-decoded `path` plus the `raw_path`; both are fuzzed here as the
server would produce them. The raw bytes on a real socket are in test_raw_path_fuzz.py.
"""

from __future__ import annotations

from urllib.parse import unquote

from hypothesis import example, given
from hypothesis import strategies as st

from tests.fuzz.conftest import INFO_ROLE, assert_error_shape, call, fuzz_settings

SEGMENTS = ["v1", "V1", "chat", "Chat", "completions", "chat/completions", "embeddings",
            "responses", "models", "admin", "Admin", "policy", "openai", "deployments", "allowed",
            "secret", "echo", "..", ".", "", "%2e%2e", "%2E", "%2f", "%2F", "%5c", "\\", "%00",
            ";", "chat%2Fcompletions", "admin%2fpolicy", "..%2f", "%252e%252e", "health",
            "live", "dev", "jwks.json", "*", "?", "#", "%20", "\u0430dmin"]
METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "get", "CONNECT"]
BODY = b'{"model": "allowed", "messages": [{"role": "user", "content": "hi"}]}'


@st.composite
def raw_paths(draw: st.DrawFn) -> str:
    parts = draw(st.lists(st.sampled_from(SEGMENTS), min_size=0, max_size=7))
    separator = draw(st.sampled_from(["/", "/", "/", "//", "%2f", "/./"]))
    return draw(st.sampled_from(["/", "", "//", "/v1/"])) + separator.join(parts)


def assert_only_info_was_served(reply, upstream, before: int) -> None:
    assert reply.status < 500, reply.body
    assert len(upstream.requests) == before
    if reply.status == 200:  # only the model list or a model card, never a completion or admin
        assert reply.json()["object"] in ("list", "model"), reply.body
    elif reply.body:
        assert_error_shape(reply)


@fuzz_settings
@given(raw=raw_paths(), method=st.sampled_from(METHODS))
@example(raw="/v1/models/../chat/completions", method="POST")
@example(raw="/v1/models/..%2Fchat%2Fcompletions", method="POST")
@example(raw="/v1//chat/completions", method="POST")
@example(raw="/V1/CHAT/COMPLETIONS", method="POST")
@example(raw="/openai/deployments/allowed/chat/completions", method="POST")
@example(raw="/openai/deployments/..%2F..%2Fadmin/policy", method="GET")
@example(raw="/admin/policy", method="GET")
@example(raw="/admin/../v1/models", method="GET")
@example(raw="/v1/models%2F..%2F..%2Fadmin%2Fpolicy", method="GET")
async def test_info_only_caller_never_reaches_inference_or_admin(
        raw, method, gateway, upstream, token_for):
    before = len(upstream.requests)
    path = unquote(raw)  # what uvicorn puts in scope["path"]

    reply = await call(gateway, method, path, raw_path=raw.encode("utf-8"), body=BODY,
                       headers=[(b"authorization", f"Bearer {token_for(INFO_ROLE)}".encode()),
                                (b"content-type", b"application/json")])

    assert_only_info_was_served(reply, upstream, before)


@fuzz_settings
@given(raw=raw_paths(), method=st.sampled_from(METHODS))
async def test_unauthenticated_request_is_refused_on_every_path_but_health(
        raw, method, gateway, upstream):
    before = len(upstream.requests)
    path = unquote(raw)

    reply = await call(gateway, method, path, raw_path=raw.encode("utf-8"), body=BODY)

    if path in ("/health/live", "/health/ready"):
        assert reply.status in (200, 503)
    else:
        assert reply.status == 401, (path, reply.body)
        assert_error_shape(reply)
    assert len(upstream.requests) == before
