"""`DevIssuer`: the tokens it mints, and the key file `rolegate dev-token` reads back."""

from __future__ import annotations

import json
import re
import stat
import time

import jwt
import pytest

from rolegate.authn.dev_issuer import STATE_FILE, DevIssuer
from rolegate.authn.jwks import parse_key_set

ISSUER = "http://127.0.0.1:8080/dev"
AUDIENCE = "rolegate"


@pytest.fixture(scope="module")
def issuer() -> DevIssuer:
    return DevIssuer.generate(ISSUER, AUDIENCE, token_ttl=600)


def verified(issuer: DevIssuer, token: str) -> dict[str, object]:
    (key,) = parse_key_set(issuer.jwks_document())
    return jwt.decode(token, key.key, algorithms=["RS256"], audience=AUDIENCE, issuer=ISSUER,
                      options={"verify_exp": False, "verify_iat": False, "verify_nbf": False})


def test_a_minted_token_verifies_with_the_published_key(issuer):
    token = issuer.mint(subject="alice", roles=("analyst",), now=1_000)

    claims = verified(issuer, token)

    assert jwt.get_unverified_header(token)["kid"] == issuer.kid
    assert (claims["sub"], claims["roles"], claims["iat"], claims["exp"]) == (
        "alice", ["analyst"], 1_000, 1_600)
    assert "scope" not in claims


def test_scopes_are_sent_as_one_space_separated_scope_claim(issuer):
    token = issuer.mint(scopes=("llm.invoke", "openid"), ttl=30, now=1_000)

    claims = verified(issuer, token)

    assert claims["scope"] == "llm.invoke openid"
    assert claims["exp"] == 1_030


def test_the_saved_key_is_private_to_its_owner_and_loads_back_as_the_same_issuer(
        issuer, tmp_path):
    state_dir = tmp_path / "state"

    path = issuer.save(state_dir)
    loaded = DevIssuer.load(state_dir)

    assert path == state_dir / STATE_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert (loaded.issuer, loaded.audience, loaded.kid, loaded.token_ttl) == (
        ISSUER, AUDIENCE, issuer.kid, 600)
    assert verified(issuer, loaded.mint(subject="bob"))["sub"] == "bob"


def test_saving_again_replaces_the_previous_key(issuer, tmp_path):
    DevIssuer.generate(ISSUER, AUDIENCE).save(tmp_path)

    issuer.save(tmp_path)

    assert DevIssuer.load(tmp_path).kid == issuer.kid


def test_a_generated_issuer_has_a_2048_bit_key_and_a_short_random_kid():
    first, second = (DevIssuer.generate(ISSUER, AUDIENCE) for _ in range(2))
    assert first.private_key.key_size == 2048
    assert re.fullmatch(r"dev-[0-9a-f]{8}", first.kid)
    assert first.kid != second.kid
    assert (first.issuer, first.audience, first.token_ttl) == (ISSUER, AUDIENCE, 3600)


def test_the_key_set_publishes_only_the_public_key_marked_for_rs256_signatures(issuer):
    (entry,) = json.loads(issuer.jwks_document())["keys"]
    assert (entry["kid"], entry["alg"], entry["use"], entry["kty"]) == (
        issuer.kid, "RS256", "sig", "RSA")
    assert not {"d", "p", "q", "dp", "dq", "qi"} & entry.keys()


def test_the_issuer_config_trusts_the_published_key_set_for_the_audience(issuer):
    config = issuer.issuer_config()
    assert (config.name, config.preset, config.issuer, config.jwks_url, config.audiences,
            config.algorithms) == ("dev", "generic", ISSUER, f"{ISSUER}/jwks.json",
                                   (AUDIENCE,), ("RS256",))


def test_a_minted_token_carries_every_claim_a_gateway_checks(issuer):
    token = issuer.mint(subject="svc", now=1_000, extra={"tid": "t1"})

    claims = verified(issuer, token)

    assert jwt.get_unverified_header(token) == {"alg": "RS256", "kid": issuer.kid,
                                                "typ": "at+jwt"}
    assert {k: v for k, v in claims.items() if k != "jti"} == {
        "iss": ISSUER, "aud": AUDIENCE, "sub": "svc", "client_id": "svc", "iat": 1_000,
        "nbf": 1_000, "exp": 1_600, "roles": ["rolegate.user"], "tid": "t1"}
    assert re.fullmatch(r"[0-9a-f]{16}", str(claims["jti"]))


def test_each_minted_token_has_its_own_jti(issuer):
    jtis = {verified(issuer, issuer.mint(now=1_000))["jti"] for _ in range(3)}
    assert len(jtis) == 3


def test_a_token_minted_with_no_arguments_is_issued_now_to_the_dev_user(issuer):
    before = int(time.time())
    claims = verified(issuer, issuer.mint())
    assert before <= int(str(claims["iat"])) <= int(time.time())
    assert (claims["sub"], claims["roles"]) == ("dev-user", ["rolegate.user"])


def test_the_key_file_can_be_saved_into_a_directory_that_does_not_exist_yet(issuer, tmp_path):
    state_dir = tmp_path / "a" / "b"
    issuer.save(state_dir)
    issuer.save(state_dir)  # and again, into the directory that now exists
    assert DevIssuer.load(state_dir).kid == issuer.kid
