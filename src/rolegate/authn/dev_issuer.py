"""`DevIssuer`: a development token issuer built into rolegate, for trying it with no IdP.

A key pair is made at start-up; its public half is served at `/dev/jwks.json` and trusted like any
other issuer, and its private half is written (mode 0600) to the state directory so that
`rolegate dev-token` can mint tokens for the running gateway. Never enable it in production.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from rolegate.config.model import IssuerConfig

DEV_ISSUER_NAME = "dev"
STATE_FILE = "dev-issuer.json"


@dataclass(frozen=True)
class DevIssuer:
    issuer: str
    audience: str
    kid: str
    private_key: rsa.RSAPrivateKey
    token_ttl: int = 3600

    @classmethod
    def generate(cls, issuer: str, audience: str, token_ttl: int = 3600) -> DevIssuer:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return cls(issuer, audience, f"dev-{secrets.token_hex(4)}", key, token_ttl)

    def jwks_document(self) -> bytes:
        public = json.loads(RSAAlgorithm.to_jwk(self.private_key.public_key()))
        public.update(kid=self.kid, alg="RS256", use="sig")
        return json.dumps({"keys": [public]}).encode()

    def issuer_config(self) -> IssuerConfig:
        return IssuerConfig(name=DEV_ISSUER_NAME, preset="generic", issuer=self.issuer,
                            jwks_url=f"{self.issuer}/jwks.json", audiences=(self.audience,),
                            algorithms=("RS256",))

    def mint(self, *, subject: str = "dev-user", roles: tuple[str, ...] = ("rolegate.user",),
             scopes: tuple[str, ...] = (), ttl: int | None = None, now: float | None = None,
             extra: dict[str, Any] | None = None) -> str:
        issued = int(time.time() if now is None else now)
        claims: dict[str, Any] = {
            "iss": self.issuer, "aud": self.audience, "sub": subject, "client_id": subject,
            "iat": issued, "nbf": issued, "exp": issued + (ttl or self.token_ttl),
            "jti": secrets.token_hex(8), "roles": list(roles),
        }
        if scopes:
            claims["scope"] = " ".join(scopes)
        claims.update(extra or {})
        return jwt.encode(claims, self.private_key, algorithm="RS256",
                          headers={"kid": self.kid, "typ": "at+jwt"})

    def save(self, state_dir: Path) -> Path:
        state_dir.mkdir(parents=True, exist_ok=True)
        path = state_dir / STATE_FILE
        private = json.loads(RSAAlgorithm.to_jwk(self.private_key))
        document = {"issuer": self.issuer, "audience": self.audience, "kid": self.kid,
                    "token_ttl": self.token_ttl, "private_jwk": private}
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as file:
            json.dump(document, file)
        return path

    @classmethod
    def load(cls, state_dir: Path) -> DevIssuer:
        document = json.loads((state_dir / STATE_FILE).read_text())
        key = RSAAlgorithm.from_jwk(document["private_jwk"])
        assert isinstance(key, rsa.RSAPrivateKey)
        return cls(document["issuer"], document["audience"], document["kid"], key,
                   document["token_ttl"])
