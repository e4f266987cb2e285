"""Fuzzing harness: a gateway built in-process (injected clock and key source), a recording
upstream, valid tokens to mutate, and a raw ASGI caller that sends bytes no HTTP client would.

`FUZZ_EXAMPLES` sets the examples per property (default 60, so the default run stays fast):

    FUZZ_EXAMPLES=20000 ./dev pytest tests/fuzz
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, settings

from rolegate.app import build_app
from rolegate.config.load import validate_settings
from rolegate.server.gateway import Gateway
from rolegate.providers.http import HttpClient
from tests.support.clock import FakeClock
from tests.support.fetch import FakeKeySource
from tests.support.keys import KeyPair, claims, jwks
from tests.support.servers import RecordingUpstream

FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "60"))
fuzz_settings = settings(max_examples=FUZZ_EXAMPLES, deadline=None, derandomize=False,
                         suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                HealthCheck.too_slow,
                                                HealthCheck.data_too_large])

ISSUER = "https://idp.fuzz.test"
AUDIENCE = "api://rolegate"
JWKS_URL = f"{ISSUER}/keys"
INFERENCE_ROLE = "Gateway.User"   # inference + info on model `allowed` only
INFO_ROLE = "Info.Reader"         # info on every model, nothing else


def gateway_settings(upstream_url: str) -> dict[str, Any]:
    upstream = {"provider": "openai-compatible", "api_base": f"{upstream_url}/v1"}
    return {
        "models": [{"name": "allowed", **upstream}, {"name": "secret", **upstream},
                   {"name": "echo", "provider": "mock"}],
        "auth": {"issuers": [{"name": "fuzz", "issuer": ISSUER, "jwks_url": JWKS_URL,
                              "audiences": [AUDIENCE]}]},
        "policy": [
            {"name": "inference-users", "when": {"roles": [INFERENCE_ROLE]},
             "allow": {"routes": ["inference", "info"], "models": ["allowed"]}},
            {"name": "info-readers", "when": {"roles": [INFO_ROLE]},
             "allow": {"routes": ["info"], "models": ["*"]}},
        ],
        "logging": {"decisions": False},
    }


@dataclass
class Reply:
    status: int
    headers: dict[bytes, bytes]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


async def call(app: Gateway, method: str, path: str, *,
               headers: Iterable[tuple[bytes, bytes]] = (), body: bytes = b"",
               raw_path: bytes | None = None, query: bytes = b"") -> Reply:
    """One request straight into the ASGI app, with exactly these bytes."""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": method, "scheme": "http", "path": path,
             "raw_path": raw_path if raw_path is not None else path.encode("utf-8", "replace"),
             "query_string": query, "root_path": "", "headers": list(headers),
             "client": ("127.0.0.1", 40000), "server": ("rolegate.test", 80)}
    pending = [{"type": "http.request", "body": body, "more_body": False}]
    done = asyncio.Event()
    status, response_headers, chunks = 0, {}, []

    async def receive() -> dict[str, Any]:
        if pending:
            return pending.pop()
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
            response_headers.update(message.get("headers", []))
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                done.set()

    await app(scope, receive, send)
    done.set()
    return Reply(status, response_headers, b"".join(chunks))


def assert_error_shape(reply: Reply) -> None:
    """Every refusal is OpenAI-shaped JSON with a stable code, never a traceback."""
    error = reply.json()["error"]
    assert isinstance(error["code"], str) and isinstance(error["message"], str)
    assert b"Traceback" not in reply.body


@pytest.fixture(scope="session")
def signing_key() -> KeyPair:
    return KeyPair.rsa("fuzz-key")


@pytest.fixture
async def upstream() -> AsyncIterator[RecordingUpstream]:
    async with RecordingUpstream() as server:
        yield server


@pytest.fixture
async def gateway(upstream: RecordingUpstream, signing_key: KeyPair, clock: FakeClock,
                  key_source: FakeKeySource) -> AsyncIterator[Gateway]:
    key_source.documents[JWKS_URL] = jwks(signing_key)
    http = HttpClient()
    app = build_app(validate_settings(gateway_settings(upstream.url), source="<fuzz>"),
                    clock=clock, fetch=key_source, http=http)
    yield app
    await http.close()


@pytest.fixture
def token_for(signing_key: KeyPair, clock: FakeClock,
              key_source: FakeKeySource) -> Callable[..., str]:
    """A valid token of the trusted issuer for `roles`, at the fake clock's time."""
    key_source.documents[JWKS_URL] = jwks(signing_key)

    def make(*roles: str, **extra: Any) -> str:
        return signing_key.sign(claims(ISSUER, AUDIENCE, now=clock.now, roles=list(roles),
                                       **extra))
    return make
