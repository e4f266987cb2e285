"""Fixtures for the micro-benchmarks: one RS256 key, its issuer compiled with warm keys, a token."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from rolegate.authn.verifier import TrustedIssuer
from rolegate.config.model import IssuerConfig

ISSUER = "https://issuer.bench.invalid"
AUDIENCE = "rolegate-bench"
JWKS_URL = ISSUER + "/jwks"
KID = "bench-rs256"


@pytest.fixture(scope="session")
def private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def sign(key: rsa.RSAPrivateKey, **extra: Any) -> str:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "bench-user", "roles": ["bench"],
              "iat": now, "nbf": now, "exp": now + 3600, **extra}
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": KID})


@pytest.fixture(scope="session")
def token(private_key: rsa.RSAPrivateKey) -> str:
    return sign(private_key)


@pytest.fixture(scope="session")
def trusted(private_key: rsa.RSAPrivateKey,
            loop: asyncio.AbstractEventLoop) -> TrustedIssuer:
    jwk = json.loads(RSAAlgorithm.to_jwk(private_key.public_key()))
    jwk.update(kid=KID, alg="RS256", use="sig")
    document = json.dumps({"keys": [jwk]}).encode()

    async def fetch(url: str) -> bytes:
        return document

    config = IssuerConfig(name="bench", issuer=ISSUER, jwks_url=JWKS_URL, audiences=(AUDIENCE,),
                          algorithms=("RS256",))
    issuer = TrustedIssuer.build(config, fetch, time.time)
    loop.run_until_complete(issuer.keys.warm())
    return issuer
