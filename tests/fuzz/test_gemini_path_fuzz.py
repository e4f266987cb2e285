"""The Gemini API names its model in the path (`/v1beta/models/{model}:generateContent`): no path
variant may get one model authorized and another forwarded.

Two levels: the route table, whose reading of a path must be the one exact spelling of the model
and method it returns (a property over paths built from the pieces attacks are made of); and
the gateway on a socket (uvicorn's percent-decoding included), where every variant either
reaches the upstream as the granted model's deployment or is refused without reaching it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rolegate.api.routes import GEMINI_OPERATIONS, resolve
from rolegate.app import build_app
from rolegate.authn.dev_issuer import DevIssuer
from rolegate.errors import GatewayError
from rolegate.providers.http import HttpClient
from tests.fuzz.conftest import fuzz_settings
from tests.support.lifespan import Lifespan
from tests.support.rawhttp import exchange, request
from tests.support.served import ServedApp
from tests.support.servers import RecordingUpstream

PIECES = ["/", ":", "v1beta", "models", "allowed", "secret", "generateContent",
          "streamGenerateContent", "GenerateContent", "countTokens", "..", ".", "%2F", "%3A",
          "%3a", "%2e%2e", "%252F", "%00", ";", "?alt=sse", "#", "\\", "models/", "tunedModels"]


@fuzz_settings
@given(st.lists(st.sampled_from(PIECES), min_size=1, max_size=8))
def test_a_gemini_route_is_only_ever_read_from_its_one_exact_spelling(pieces):
    path = "/v1beta/models/" + "".join(pieces)
    try:
        route = resolve("POST", path)
    except GatewayError:
        return
    assert route.operation in GEMINI_OPERATIONS
    assert route.model and "/" not in route.model and ":" not in route.model
    assert path == f"/v1beta/models/{route.model}:{route.operation}"


TARGETS = [
    b"/v1beta/models/allowed:generateContent",
    b"/v1beta/models/secret:generateContent",
    b"/v1beta/models/allowed%3AgenerateContent",
    b"/v1beta/models/secret%3AcountTokens:generateContent",
    b"/v1beta/models/allowed:generateContent:secret",
    b"/v1beta/models/allowed%2F..%2Fsecret:generateContent",
    b"/v1beta/models/allowed/../secret:generateContent",
    b"/v1beta/models/../models/secret:generateContent",
    b"/v1beta/models/%73ecret:generateContent",
    b"/v1beta/models/allowed:GENERATECONTENT",
    b"/v1beta/models/allowed:generateContent%00",
    b"/v1beta/models/allowed:generateContent/",
    b"/v1beta/models/allowed:generateContent;secret",
    b"/v1beta//models/allowed:generateContent",
    b"/V1BETA/models/allowed:generateContent",
    b"/v1beta/models/allowed:generateContent?alt=json&alt=sse",
    b"/v1beta/models/secret:generateContent?model=allowed",
    b"/v1beta/models/allowed%252F..%252Fsecret:generateContent",
]


@pytest.fixture
async def served(settings_from, dev_issuer: DevIssuer
                 ) -> AsyncIterator[tuple[int, RecordingUpstream, str]]:
    async with RecordingUpstream() as upstream:
        config: dict[str, Any] = {
            "models": [
                {"name": "allowed", "provider": "openai-compatible",
                 "api_base": f"{upstream.url}/v1", "model": "allowed-upstream"},
                {"name": "secret", "provider": "openai-compatible",
                 "api_base": f"{upstream.url}/v1", "model": "secret-upstream"}],
            "auth": {"dev_issuer": {"enabled": True}},
            "policy": [{"name": "users", "when": {"roles": ["user"]},
                        "allow": {"routes": ["inference"], "models": ["allowed"]}}]}
        http = HttpClient()
        app = build_app(settings_from(config), http=http, dev_issuer=dev_issuer)
        lifespan = Lifespan(app)
        await lifespan.startup()
        async with ServedApp(app) as url:
            yield int(url.rsplit(":", 1)[1]), upstream, dev_issuer.mint(subject="svc",
                                                                        roles=("user",))
        await lifespan.shutdown()
        await http.close()


@pytest.mark.parametrize("target", TARGETS, ids=[t.decode() for t in TARGETS])
async def test_no_path_variant_forwards_a_model_other_than_the_one_authorized(served, target):
    port, upstream, token = served
    body = b'{"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}'
    reply = await exchange(port, request("POST", target, body=body, headers={
        "x-goog-api-key": token, "content-type": "application/json"}))

    assert reply.status is not None and reply.status < 500
    models = {sent.json()["model"] for sent in upstream.requests}
    assert models <= {"allowed-upstream"}
    if reply.status == 200:  # `%3A` is `:` once decoded: the same path, the same model
        assert target.replace(b"%3A", b":").startswith(b"/v1beta/models/allowed:generateContent")
        assert models == {"allowed-upstream"}
    else:
        assert upstream.requests == []
