"""Property-based attacks on the request body of an inference call, by a caller granted model
`allowed` only (`secret` goes to the same upstream).

Invariants: never a 5xx; a refused request never reaches the upstream; what reaches the upstream
names model `allowed` however its JSON is read (first or last duplicate key wins).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tests.fuzz.conftest import (
    INFERENCE_ROLE, assert_error_shape, call, fuzz_settings, gateway_settings,
)

MESSAGES = [{"role": "user", "content": "hi"}]

json_scalars = (st.none() | st.booleans() | st.integers()
                | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20)
                | st.sampled_from(["allowed", "secret", "Allowed", "allowed ", "allowed\x00", "*",
                                   "echo"]))
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                           max_leaves=12)


def first_wins(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        result.setdefault(key, value)
    return result


def assert_upstream_saw_only_allowed(upstream, before: int, reply) -> None:
    new = upstream.requests[before:]
    if reply.status != 200:
        assert_error_shape(reply)
        assert new == [], reply.body
        return
    assert len(new) == 1
    last = json.loads(new[0].body)
    first = json.loads(new[0].body, object_pairs_hook=first_wins)
    assert last["model"] == first["model"] == "allowed", new[0].body


async def post(gateway, token: str, body: bytes):
    return await call(gateway, "POST", "/v1/chat/completions", body=body,
                      headers=[(b"authorization", f"Bearer {token}".encode()),
                               (b"content-type", b"application/json")])


@fuzz_settings
@given(model=json_values, stream=st.none() | json_scalars, drop_model=st.booleans())
async def test_model_of_any_json_type_is_either_refused_or_exactly_the_granted_one(
        model, stream, drop_model, client_for, settings_from, upstream, token_for):
    client = client_for(settings_from(gateway_settings(upstream.url)))
    body: dict[str, Any] = {"messages": MESSAGES}
    if not drop_model:
        body["model"] = model
    if stream is not None:
        body["stream"] = stream
    before = len(upstream.requests)

    response = await client.post("/v1/chat/completions", json=body,
                                 headers={"Authorization": f"Bearer {token_for(INFERENCE_ROLE)}"})

    assert response.status_code in (200, 400, 403, 404), response.text
    if response.status_code == 200:
        assert model == "allowed" and not drop_model
    else:
        assert response.json()["error"]["code"]
    assert len(upstream.requests) == before + (response.status_code == 200)


def _duplicate_model_bodies() -> st.SearchStrategy[bytes]:
    key = st.sampled_from(['"model"', '"mod\\u0065l"', '"\\u006dodel"', '"MODEL"', '"model "'])
    value = st.sampled_from(['"allowed"', '"secret"', '"\\u0073ecret"', "null", "1", '["secret"]'])
    pair = st.tuples(key, value).map(lambda kv: f"{kv[0]}: {kv[1]}")
    return st.lists(pair, min_size=1, max_size=4).map(
        lambda pairs: ("{" + ", ".join([*pairs, '"messages": []']) + "}").encode())


@fuzz_settings
@given(body=_duplicate_model_bodies())
@example(body=b'{"model": "secret", "model": "allowed", "messages": []}')
@example(body=b'{"mod\\u0065l": "secret", "model": "allowed", "messages": []}')
async def test_duplicate_or_escaped_model_keys_cannot_smuggle_another_model(
        body, gateway, upstream, token_for):
    before = len(upstream.requests)

    reply = await post(gateway, token_for(INFERENCE_ROLE), body)

    assert reply.status in (200, 400, 403, 404)
    assert_upstream_saw_only_allowed(upstream, before, reply)


@fuzz_settings
@given(body=st.binary(max_size=2000)
       | st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass"))
       | st.integers(min_value=1, max_value=100_000).map(lambda n: b"[" * n)
       | st.integers(min_value=1, max_value=100_000).map(
           lambda n: b'{"model": "allowed", "x": ' + b"[" * n + b"]" * n + b"}")
       | st.integers(min_value=257, max_value=200_000).map(
           lambda n: b'{"model": "' + b"a" * n + b'"}'))
@example(body=b'{"model": "allow\xffed", "messages": []}')
@example(body=b'{"model": "allowed", "messages": [' + b'"\xed\xa0\x80"' + b"]}")
@example(body=b"")
async def test_malformed_or_huge_body_is_a_clean_4xx(body, gateway, upstream, token_for):
    before = len(upstream.requests)

    reply = await post(gateway, token_for(INFERENCE_ROLE), body)

    assert reply.status in (200, 400, 403, 404, 413), reply.body
    assert_upstream_saw_only_allowed(upstream, before, reply)


BOUNDARY = "fuzz-boundary"


def _form(*parts: tuple[str, str | None, str]) -> bytes:
    """A multipart body of (name, filename, content) parts."""
    out = b""
    for name, filename, content in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        out += f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n\r\n{content}\r\n".encode()
    return out + f"--{BOUNDARY}--\r\n".encode()


@pytest.mark.parametrize("parts", [
    [("model", None, "allowed"), ("model", None, "secret")],
    [("model", None, "secret"), ("model", None, "allowed")],
    [("model", "m.txt", "secret"), ("model", None, "allowed")],
    [("model", None, "allowed"), ("stream", None, "false"), ("stream", None, "true")],
], ids=["allowed-then-secret", "secret-then-allowed", "file-part-named-model", "two-streams"])
async def test_form_repeating_a_field_the_gateway_decides_on_is_refused(
        parts, gateway, upstream, token_for):
    """A form is forwarded as sent: a repeated `model` could be read one way here and another
    way upstream, so it is refused."""
    before = len(upstream.requests)
    body = _form(*parts, ("file", "a.wav", "RIFF audio"))

    reply = await call(gateway, "POST", "/v1/audio/transcriptions", body=body, headers=[
        (b"authorization", f"Bearer {token_for(INFERENCE_ROLE)}".encode()),
        (b"content-type", f"multipart/form-data; boundary={BOUNDARY}".encode())])

    assert reply.status == 400, reply.body
    assert reply.json()["error"]["code"] == "invalid_body"
    assert len(upstream.requests) == before

