"""Tokens an attacker crafts by hand: unsigned, HMAC-signed with a public key, or signed with the
attacker's own key while naming a key source (`jku`, `x5u`, `jwk`) the gateway must ignore."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from cryptography.hazmat.primitives import serialization

from tests.support.keys import KeyPair


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _segment(value: dict[str, Any]) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


def unsigned_token(claims: dict[str, Any], *, kid: str | None = None) -> str:
    """`alg: none` with an empty signature (RFC 7519 §6.1)."""
    header = {"alg": "none", "typ": "JWT", **({"kid": kid} if kid else {})}
    return f"{_segment(header)}.{_segment(claims)}."


def public_pem(key: KeyPair) -> bytes:
    return key.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def hmac_token(claims: dict[str, Any], secret: bytes, *, kid: str | None = None,
               alg: str = "HS256") -> str:
    """HMAC-signed by hand (PyJWT refuses a PEM as an HMAC secret): the RS/HS confusion attack
    uses the issuer's public key, which anyone can download, as the secret."""
    header = {"alg": alg, "typ": "JWT", **({"kid": kid} if kid else {})}
    signing_input = f"{_segment(header)}.{_segment(claims)}"
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
    signature = hmac.new(secret, signing_input.encode(), digest).digest()
    return f"{signing_input}.{b64url(signature)}"


def token_of_size(size: int) -> str:
    """A JWT-shaped string of exactly `size` characters."""
    header = _segment({"alg": "RS256", "typ": "JWT"})
    padding = size - len(header) - 2 - 16
    return f"{header}.{'A' * padding}.{'B' * 16}"
