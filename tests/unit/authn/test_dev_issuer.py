"""`DevIssuer`: the tokens it mints, and the key file `rolegate dev-token` reads back."""

from __future__ import annotations

import stat

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
