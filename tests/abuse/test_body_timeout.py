"""`server.body_timeout`: a client that sends its headers and then trickles (or withholds) the
body is answered 408 and never forwarded."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from rolegate.app import build_app
from rolegate.config.load import validate_settings
from tests.support.keys import KeyPair, claims, jwks

ISSUER = "https://idp.slow.test"
JWKS_URL = f"{ISSUER}/keys"


async def test_body_that_never_finishes_gets_408_and_connection_close(
        key_source, clock, rsa_key: KeyPair) -> None:
    key_source.documents[JWKS_URL] = jwks(rsa_key)
    settings = validate_settings({
        "server": {"body_timeout": 0.05},
        "models": [{"name": "echo", "provider": "mock"}],
        "auth": {"issuers": [{"name": "slow", "issuer": ISSUER, "jwks_url": JWKS_URL,
                              "audiences": ["api://rolegate"]}]},
        "policy": [{"name": "all", "when": {"authenticated": True},
                    "allow": {"routes": ["inference"], "models": ["*"]}}],
    }, source="<test>")
    app = build_app(settings, clock=clock, fetch=key_source)
    token = rsa_key.sign(claims(ISSUER, "api://rolegate", now=clock.now))
    chunks = [{"type": "http.request", "body": b'{"model": "echo", ', "more_body": True}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if chunks:
            return chunks.pop()
        await asyncio.Event().wait()  # the rest of the body never comes
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/v1/chat/completions",
             "query_string": b"", "headers": [(b"authorization", f"Bearer {token}".encode())]}
    await asyncio.wait_for(app(scope, receive, send), timeout=10)

    start, body = sent[0], sent[1]
    assert start["status"] == 408
    assert (b"connection", b"close") in start["headers"]
    assert orjson.loads(body["body"])["error"]["code"] == "body_timeout"
