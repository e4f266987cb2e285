"""Token factories for gateway modes: signing keys, a JWKS file, and a long-lived token."""

from __future__ import annotations

import json
import subprocess
import time

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from bench.modes import GatewaySetup, TokenFactory, Unavailable

ISSUER = "https://issuer.bench.invalid"
AUDIENCE = "rolegate-bench"


def _keypair(alg: str):
    if alg.startswith("RS") or alg.startswith("PS"):
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return key, RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    if alg == "ES256":
        key = ec.generate_private_key(ec.SECP256R1())
        return key, ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
    raise ValueError(f"unsupported algorithm {alg}")


def jwt_token(alg: str, jwks_file: str, claims: dict | None = None) -> TokenFactory:
    """Make a key pair, publish its JWKS as setup.jwks_dir/jwks_file, return a Bearer token.

    The gateway config should name `{upstream_root}/jwks/<jwks_file>` as the JWKS URL,
    ISSUER as the issuer and AUDIENCE as the audience.
    """
    def factory(setup: GatewaySetup) -> str:
        key, jwk = _keypair(alg)
        kid = f"bench-{alg.lower()}"
        jwk.update({"kid": kid, "alg": alg, "use": "sig"})
        setup.jwks_dir.mkdir(parents=True, exist_ok=True)
        (setup.jwks_dir / jwks_file).write_text(json.dumps({"keys": [jwk]}))
        now = int(time.time())
        payload = {"iss": ISSUER, "aud": AUDIENCE, "sub": "bench-user", "roles": ["bench"],
                   "iat": now, "nbf": now, "exp": now + 6 * 3600, **(claims or {})}
        return "Bearer " + jwt.encode(payload, key, algorithm=alg, headers={"kid": kid})
    return factory


def api_key_token(roles: str = "bench") -> TokenFactory:
    """Create a virtual API key with the gateway's own CLI (`keys create`, which also creates
    the database) and return it as a Bearer value."""
    def factory(setup: GatewaySetup) -> str:
        if not setup.cli or setup.config is None:
            raise Unavailable("API keys need a rolegate command line to create one")
        created = subprocess.run(
            [*setup.cli, "keys", "create", "--config", str(setup.config), "--name", "bench",
             "--owner", "bench-user", "--roles", roles, "--state-dir", str(setup.workdir)],
            capture_output=True, text=True, timeout=60, cwd=setup.workdir)
        lines = created.stdout.split()
        if created.returncode != 0 or not lines or not lines[-1].startswith("rg-"):
            raise Unavailable(f"`keys create` failed: {(created.stderr or created.stdout)[-300:]}")
        return "Bearer " + lines[-1]
    return factory


def static_token(value: str) -> TokenFactory:
    """A fixed Authorization header value (API keys)."""
    return lambda setup: value
