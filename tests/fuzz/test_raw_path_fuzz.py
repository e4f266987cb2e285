"""The path attacks that HTTP clients normalise away, sent byte for byte over a socket to rolegate
running as a real process (so uvicorn's own decoding is part of what is tested).

A caller granted only route group `info` must never reach inference or admin; nothing is a 5xx.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fuzz.conftest import AUDIENCE, FUZZ_EXAMPLES, INFO_ROLE, fuzz_settings
from tests.support.keys import KeyPair, claims
from tests.support.process import GatewayProcess
from tests.support.rawhttp import exchange, request
from tests.support.servers import LocalIdp, RecordingUpstream

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

FIXED_TARGETS = [
    b"/v1//chat/completions", b"//v1/chat/completions", b"/v1/./chat/completions",
    b"/v1/models/../chat/completions", b"/v1/models/..%2Fchat%2Fcompletions",
    b"/v1/models/%2e%2e/chat/completions", b"/v1/chat%2Fcompletions", b"/v1%2Fchat%2Fcompletions",
    b"/V1/Chat/Completions", b"/admin/policy", b"/admin%2Fpolicy", b"/v1/models/../../admin/policy",
    b"/v1/models%2F..%2F..%2Fadmin%2Fpolicy", b"/openai/deployments/allowed/chat/completions",
    b"/openai/deployments/..%2F..%2Fadmin/policy", b"http://127.0.0.1/v1/chat/completions",
    b"/v1/chat/completions?x=/v1/models", b"/v1/chat/completions#/v1/models",
    b"/v1/chat/completions%00", b"/v1/chat/completions;/v1/models", b"/%2e%2e/admin/policy",
    b"/v1/models/%252e%252e%252fchat", b"/v1\\chat\\completions", b"*",
]
BODY = b'{"model": "allowed", "messages": [{"role": "user", "content": "hi"}]}'
PIECES = [b"v1", b"chat", b"completions", b"admin", b"policy", b"models", b"openai",
          b"deployments", b"allowed", b"..", b".", b"", b"%2e%2e", b"%2f", b"%2F", b"%5c",
          b"%00", b"%252f", b";", b"V1", b"ADMIN", b"%2E%2E%2F"]


def _config(idp: LocalIdp, upstream: RecordingUpstream) -> str:
    return f"""
models:
  - {{name: allowed, provider: openai-compatible, api_base: "{upstream.url}/v1"}}
auth:
  issuers:
    - {{name: fuzz, issuer: "{idp.issuer}", jwks_url: "{idp.url}/jwks", audiences: ["{AUDIENCE}"]}}
policy:
  - {{name: info-readers, when: {{roles: [{INFO_ROLE}]}}, allow: {{routes: [info], models: ["*"]}}}}
logging: {{level: warning}}
"""


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def served(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple]:
    key = KeyPair.rsa("raw-key")
    async with LocalIdp(key) as idp, RecordingUpstream() as upstream:
        workdir: Path = tmp_path_factory.mktemp("raw-path")
        async with GatewayProcess(_config(idp, upstream), workdir,
                                  ready_path="/health/ready") as gateway:
            token = key.sign(claims(idp.issuer, AUDIENCE, now=time.time(), roles=[INFO_ROLE]))
            yield gateway, upstream, token


async def _assert_info_only(served: tuple, method: str, target: bytes) -> None:
    gateway, upstream, token = served
    before = len(upstream.requests)

    reply = await exchange(gateway.port, request(method, target, body=BODY, headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/json"}))

    assert reply.status is not None and reply.status < 500, (target, reply)
    assert len(upstream.requests) == before, target
    if reply.status == 200:
        assert b'"object":"list"' in reply.body or b'"object":"model"' in reply.body, target


@pytest.mark.parametrize("target", FIXED_TARGETS, ids=[t.decode() for t in FIXED_TARGETS])
@pytest.mark.parametrize("method", ["POST", "GET"])
async def test_unnormalised_path_on_the_wire_never_reaches_inference_or_admin(
        served, method, target):
    await _assert_info_only(served, method, target)


@settings(fuzz_settings, max_examples=max(20, FUZZ_EXAMPLES // 3))
@given(pieces=st.lists(st.sampled_from(PIECES), max_size=6),
       separators=st.lists(st.sampled_from([b"/", b"//", b"%2f", b"/./", b"\\"]), min_size=6,
                           max_size=6),
       method=st.sampled_from(["POST", "GET", "PUT"]))
async def test_generated_raw_path_never_reaches_inference_or_admin(
        served, pieces, separators, method):
    # six separators, up to six pieces: each piece takes the next separator
    target = b"/" + b"".join(p + s for p, s in zip(pieces, separators, strict=False))
    await _assert_info_only(served, method, target)
