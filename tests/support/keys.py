"""Signing keys generated for the test session, and tokens signed with them."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm


@dataclass
class KeyPair:
    kid: str
    alg: str
    private_key: Any
    extra_public: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def rsa(cls, kid: str, alg: str = "RS256") -> KeyPair:
        return cls(kid, alg, rsa.generate_private_key(public_exponent=65537, key_size=2048))

    @classmethod
    def ec(cls, kid: str, alg: str = "ES256") -> KeyPair:
        curve = {"ES256": ec.SECP256R1(), "ES384": ec.SECP384R1()}[alg]
        return cls(kid, alg, ec.generate_private_key(curve))

    def public_jwk(self) -> dict[str, Any]:
        codec = RSAAlgorithm if isinstance(self.private_key, rsa.RSAPrivateKey) else ECAlgorithm
        jwk = json.loads(codec.to_jwk(self.private_key.public_key()))
        jwk.update(kid=self.kid, alg=self.alg, use="sig", **self.extra_public)
        return jwk

    def sign(self, claims: dict[str, Any], headers: dict[str, Any] | None = None) -> str:
        return jwt.encode(claims, self.private_key, algorithm=self.alg,
                          headers={"kid": self.kid, **(headers or {})})


def jwks(*keys: KeyPair) -> bytes:
    return json.dumps({"keys": [key.public_jwk() for key in keys]}).encode()


def claims(iss: str, aud: str | list[str], *, now: float | None = None, exp_in: float = 3600,
           **extra: Any) -> dict[str, Any]:
    issued = int(time.time() if now is None else now)
    return {"iss": iss, "aud": aud, "iat": issued, "nbf": issued, "exp": issued + exp_in,
            "sub": "subject-1", **extra}


TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
OTHER_TENANT = "f8cdef31-a31e-4b4a-93e4-5f571e91255a"
ENTRA_AUDIENCE = "api://LiteLLM_Proxy-dev"
ENTRA_V1_ISSUER = f"https://sts.windows.net/{TENANT}/"
ENTRA_V2_ISSUER = f"https://login.microsoftonline.com/{TENANT}/v2.0"


def entra_app_claims(version: int, *, roles: list[str] | None = None, tenant: str = TENANT,
                     now: float | None = None, **extra: Any) -> dict[str, Any]:
    """An Entra client-credentials access token's claims, as Entra shapes them (v1 or v2)."""
    issuer = (f"https://sts.windows.net/{tenant}/" if version == 1
              else f"https://login.microsoftonline.com/{tenant}/v2.0")
    body = claims(issuer, ENTRA_AUDIENCE, now=now, tid=tenant, oid="9f2b7c1e-app-object-id",
                  sub="9f2b7c1e-app-object-id", idtyp="app", ver=f"{version}.0", **extra)
    body["appid" if version == 1 else "azp"] = "0a1b2c3d-client-app-id"
    body["appidacr" if version == 1 else "azpacr"] = "1"
    if roles is not None:
        body["roles"] = roles
    return body
