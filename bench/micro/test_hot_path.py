"""The per-request steps, each on its own: verifying a token (cold and cached), turning claims
into a principal, deciding, and reading a request body.

Run with `./dev pytest bench/micro` (not part of the default test run: `testpaths` is `tests`).
"""

from __future__ import annotations

import asyncio
import time

import jwt
import orjson
import pytest

from rolegate.authn.claims import ClaimMapping
from rolegate.authn.verifier import JwtVerifier, TrustedIssuer
from rolegate.authn.principal import Principal
from rolegate.authz.model import Action, Decision
from rolegate.authz.policy import RolePolicy
from rolegate.config.load import validate_settings
from rolegate.config.model import IssuerConfig
from rolegate.reading import body as bodies

CHAT = orjson.dumps({"model": "gpt-4o-mini", "messages": [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Summarise the quarterly numbers " * 20}]})

POLICY = validate_settings({
    "models": [{"name": n, "provider": "mock"} for n in ("gpt-4o", "gpt-4o-mini", "embed")],
    "auth": {"dev_issuer": {"enabled": True}},
    "policy": [
        {"name": "admins", "when": {"roles": ["Gateway.Admin"]}, "allow": {"routes": ["admin"]}},
        {"name": "analysts", "when": {"groups": ["analysts"], "scopes": ["llm.read"]},
         "allow": {"routes": ["inference", "info"], "models": ["gpt-4o-mini"]}},
        {"name": "tenant", "when": {"tenants": ["t-1"], "claims": {"department": ["finance"]}},
         "allow": {"routes": ["inference"], "models": ["embed"]}},
        {"name": "users", "when": {"roles": ["Gateway.User"]},
         "allow": {"routes": ["inference", "info"], "models": ["gpt-4o*"]}},
    ],
}, source="<bench>").policy


def test_verify_token_cold(benchmark, trusted: TrustedIssuer, token: str,
                           loop: asyncio.AbstractEventLoop) -> None:
    """A token not seen before: header and claims parsed, RS256 signature checked."""
    def verify_cold() -> None:
        loop.run_until_complete(JwtVerifier([trusted], time.time).verify(token))
    benchmark(verify_cold)


def test_verify_token_cached(benchmark, trusted: TrustedIssuer, token: str,
                             loop: asyncio.AbstractEventLoop) -> None:
    """The same token again: served from the verified-token cache."""
    verifier = JwtVerifier([trusted], time.time)
    loop.run_until_complete(verifier.verify(token))

    async def many() -> None:
        for _ in range(100):
            await verifier.verify(token)
    benchmark.extra_info["per"] = "100 verifications"
    benchmark(lambda: loop.run_until_complete(many()))


@pytest.mark.parametrize("preset", ["entra", "generic"])
def test_principal_from_claims(benchmark, preset: str) -> None:
    config = IssuerConfig(name="idp", preset=preset, issuer="https://idp.invalid",
                          jwks_url="https://idp.invalid/keys", audiences=("api://gw",))
    mapping = ClaimMapping.for_issuer(config)
    claims = {"iss": "https://idp.invalid", "aud": "api://gw", "sub": "s-1", "oid": "o-1",
              "tid": "t-1", "azp": "client-1", "roles": ["Gateway.User", "Reader"],
              "scp": "llm.read llm.write", "groups": ["g-1", "g-2"], "exp": 2_000_000_000}
    benchmark(mapping.to_principal, claims)


@pytest.mark.parametrize(("roles", "model", "allowed"), [
    (["Gateway.User"], "gpt-4o", True),
    (["Reader"], "gpt-4o", False),
], ids=["allowed-last-rule", "denied"])
def test_policy_decision(benchmark, roles: list[str], model: str, allowed: bool) -> None:
    policy = RolePolicy.compile(POLICY)
    mapping = ClaimMapping.for_issuer(IssuerConfig(
        name="idp", issuer="https://idp.invalid", jwks_url="https://idp.invalid/keys",
        audiences=("api://gw",)))
    who = mapping.to_principal({"sub": "s-1", "roles": roles, "tid": "t-2"})
    action = Action("inference", "/v1/chat/completions", model)
    assert policy.decide(who, action).allowed is allowed
    benchmark(policy.decide, who, action)


def test_body_inspection(benchmark) -> None:
    """Parse, read `model`/`stream`, re-encode the body for the upstream."""
    def inspect() -> None:
        body = bodies.parse_object(CHAT)
        inspected = bodies.inspect(body, None)
        bodies.rewrite(body, upstream_model=inspected.model, end_user=None)
    benchmark(inspect)


def test_unverified_decode_share(benchmark, token: str) -> None:
    """For scale: PyJWT's unverified header+payload read, part of every cold verification."""
    def decode() -> None:
        jwt.get_unverified_header(token)
        jwt.decode(token, options={"verify_signature": False})
    benchmark(decode)


def test_decision_log_line(benchmark, tmp_path) -> None:
    """One decision line at INFO, formatted and written to a file."""
    import logging

    from rolegate.observability.logging import DecisionLog, configure_logging

    with open(tmp_path / "decisions.log", "w") as sink:
        configure_logging("info", sink)
        log = DecisionLog()
        who = Principal(issuer="idp", subject="s-1", client_id="c-1", roles=frozenset({"u"}))
        action = Action("inference", "/v1/chat/completions", "gpt-4o")
        decision = Decision(True, "users", "granted by rule 'users'")
        benchmark(log.record, "0123456789abcdef", who, action, decision)
        logging.getLogger("rolegate").handlers[:] = []
