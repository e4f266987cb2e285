"""The configuration the in-process integration tests run against, and tokens for it.

One generic issuer (keys served by a `FakeKeySource`), OpenAI-compatible and Azure models that
point at a local upstream, the mock model `echo`, and a policy with four rules:

- `users` (role `user`): inference and listing of `gpt-4o-mini`, `echo` and `azure-*`;
- `power` (role `power`): inference and listing of every model;
- `readers` (scope `models.read`): listing of `echo` only;
- `admins` (role `admin`): the admin routes.
"""

from __future__ import annotations

from typing import Any

from tests.support.clock import FakeClock
from tests.support.gateways import bearer as bearer  # re-exported for the tests using this gateway
from tests.support.keys import KeyPair, claims

ISSUER = "https://idp.example.com"
JWKS_URL = f"{ISSUER}/keys"
AUDIENCE = "rolegate"
AZURE_KEY = "azure-secret-key-do-not-leak"
UPSTREAM_KEY = "sk-upstream-secret-do-not-leak"
CHAT = {"model": "echo", "messages": [{"role": "user", "content": "hello there"}]}


def sample_config(upstream_url: str, **server: Any) -> dict[str, Any]:
    return {
        "server": server,
        "models": [
            {"name": "gpt-4o", "provider": "openai-compatible", "api_base": f"{upstream_url}/v1",
             "api_key": UPSTREAM_KEY},
            {"name": "gpt-4o-mini", "provider": "openai-compatible",
             "api_base": f"{upstream_url}/v1", "model": "upstream-mini"},
            {"name": "azure-4o", "provider": "azure", "api_base": upstream_url,
             "deployment": "dep-4o", "api_version": "2024-10-21", "api_key": AZURE_KEY},
            {"name": "echo", "provider": "mock"},
        ],
        "auth": {"issuers": [{"name": "idp", "issuer": ISSUER, "jwks_url": JWKS_URL,
                              "audiences": [AUDIENCE], "end_user_claim": "email"}]},
        "policy": [
            {"name": "users", "when": {"roles": ["user"]},
             "allow": {"routes": ["inference", "info"],
                       "models": ["gpt-4o-mini", "echo", "azure-*"]}},
            {"name": "power", "when": {"roles": ["power"]},
             "allow": {"routes": ["inference", "info"], "models": ["*"]}},
            {"name": "readers", "when": {"scopes": ["models.read"]},
             "allow": {"routes": ["info"], "models": ["echo"]}},
            {"name": "admins", "when": {"roles": ["admin"]}, "allow": {"routes": ["admin"]}},
        ],
    }


def token_for(key: KeyPair, clock: FakeClock, **extra: Any) -> str:
    return key.sign(claims(ISSUER, AUDIENCE, now=clock.now, **extra))




def assert_openai_error(body: Any, code: str) -> None:
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
