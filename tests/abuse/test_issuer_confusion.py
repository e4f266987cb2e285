"""Issuer mix-up: with two trusted issuers, a token must verify with the keys of the issuer it
names, never with the other's, even when it names the other's key id."""

from __future__ import annotations

from typing import Any

from tests.support.keys import KeyPair, claims, jwks

A, B = "https://idp-a.test", "https://idp-b.test"
AUDIENCE = "api://rolegate"


def two_issuers() -> dict[str, Any]:
    return {
        "models": [{"name": "echo", "provider": "mock"}],
        "auth": {"issuers": [
            {"name": "a", "issuer": A, "jwks_url": f"{A}/keys", "audiences": [AUDIENCE]},
            {"name": "b", "issuer": B, "jwks_url": f"{B}/keys", "audiences": [AUDIENCE]}]},
        "policy": [{"name": "a-admins", "when": {"issuers": ["a"], "roles": ["admin"]},
                    "allow": {"routes": ["inference"], "models": ["*"]}}],
    }


async def test_token_naming_one_issuer_but_signed_with_the_others_key_is_refused(
        client_for, settings_from, key_source, clock):
    key_a, key_b = KeyPair.rsa("a-key"), KeyPair.rsa("b-key")
    key_source.documents.update({f"{A}/keys": jwks(key_a), f"{B}/keys": jwks(key_b)})
    client = client_for(settings_from(two_issuers()))
    body = {"model": "echo", "messages": [{"role": "user", "content": "hi"}]}

    genuine = key_a.sign(claims(A, AUDIENCE, now=clock.now, roles=["admin"]))
    forged = key_b.sign(claims(A, AUDIENCE, now=clock.now, roles=["admin"]))
    from_b = key_b.sign(claims(B, AUDIENCE, now=clock.now, roles=["admin"]))
    replies = [await client.post("/v1/chat/completions", json=body,
                                 headers={"Authorization": f"Bearer {t}"})
               for t in (genuine, forged, from_b)]

    assert [r.status_code for r in replies] == [200, 401, 403]
    assert replies[1].json()["error"]["code"] == "unknown_signing_key"
    assert f"{A}/keys" in key_source.fetches and f"{B}/keys" in key_source.fetches
