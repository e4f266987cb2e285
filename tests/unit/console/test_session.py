"""The console's signed cookies and its configuration checks."""

from __future__ import annotations

from typing import Any

import pytest

from rolegate.config.load import ConfigError, validate_settings
from rolegate.console.session import Signer
from rolegate.console.signin import pkce_challenge


def test_a_signed_document_reads_back_and_any_edit_is_refused():
    signer = Signer(b"k" * 32, "session")
    value = signer.sign({"sub": "ops", "roles": ["viewer"]})
    payload, _, mac = value.partition(".")

    assert signer.unsign(value) == {"sub": "ops", "roles": ["viewer"]}
    assert signer.unsign(payload[:-1] + ("A" if payload[-1] != "A" else "B") + "." + mac) is None
    assert signer.unsign(payload + "." + mac[:-1]) is None
    assert signer.unsign("") is None


def test_a_signature_for_one_purpose_is_not_valid_for_another():
    """The sign-in cookie cannot be replayed as a session cookie, nor the reverse."""
    value = Signer(b"k" * 32, "sign-in").sign({"state": "s"})

    assert Signer(b"k" * 32, "session").unsign(value) is None


def test_the_pkce_challenge_is_rfc_7636s_s256_example():
    # RFC 7636 Appendix B.
    assert pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") \
        == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def problems(console: dict[str, Any]) -> list[str]:
    try:
        validate_settings({
            "models": [{"name": "echo", "provider": "mock"}],
            "auth": {"issuers": [{"name": "corp", "issuer": "https://idp.example",
                                  "audiences": ["rolegate"],
                                  "jwks_url": "https://idp.example/jwks"}]},
            "console": console}, source="<test>")
    except ConfigError as exc:
        return exc.problems
    return []


@pytest.mark.parametrize(("console", "expected"), [
    ({"issuer": "corp", "authorization_url": "https://idp.example/authorize",
      "token_url": "https://idp.example/token"}, []),
    ({"issuer": "nope"}, ["console.issuer: unknown issuer 'nope' (known: corp)"]),
    ({"issuer": "corp", "token_url": "https://idp.example/token"},
     ["console.authorization_url: signing in with 'corp' needs its authorization_url (the "
      "issuer's discovery document names it)"]),
    ({"enabled": False, "issuer": "nope"}, []),
], ids=["complete", "unknown-issuer", "missing-endpoint", "off"])
def test_the_console_issuer_must_be_known_with_its_endpoints(console, expected):
    assert problems(console) == expected
