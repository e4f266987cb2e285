"""Configurations for tests of keys, usage and limits: a recording upstream behind `gpt-4o`
(priced), the mock `echo`, the development issuer for administrators, and keys enabled."""

from __future__ import annotations

from typing import Any

from tests.support.storage import PEPPER

CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
INPUT_PRICE, OUTPUT_PRICE = 0.5, 1.5  # USD per 1k tokens


def keyed_config(database: dict[str, Any] | None, upstream_url: str, *,
                 service_limits: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    allow: dict[str, Any] = {"routes": ["inference", "info"], "models": ["*"]}
    if service_limits is not None:
        allow["limits"] = service_limits
    config: dict[str, Any] = {
        "models": [{"name": "gpt-4o", "provider": "openai-compatible",
                    "api_base": f"{upstream_url}/v1", "input_cost_per_1k": INPUT_PRICE,
                    "output_cost_per_1k": OUTPUT_PRICE},
                   {"name": "echo", "provider": "mock"}],
        "auth": {"dev_issuer": {"enabled": True}},
        "keys": {"enabled": True, "pepper": PEPPER, "cache_ttl": 3},
        "accounting": {"flush_interval": 0.05},
        "policy": [
            {"name": "services", "when": {"issuers": ["apikey"], "roles": ["svc"]},
             "allow": allow},
            {"name": "admins", "when": {"roles": ["rolegate.admin"]},
             "allow": {"routes": ["admin"]}},
        ],
        **extra,
    }
    if database is not None:
        config["database"] = database
    return config


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def create_key(gateway: Any, admin: dict[str, str], **fields: Any) -> dict[str, Any]:
    """A virtual key made through the admin API (`fields` override the defaults), as JSON."""
    body = {"name": "billing-service", "owner": "team-billing", "roles": ["svc"], **fields}
    response = await gateway.post("/admin/keys", json=body, headers=admin)
    assert response.status_code == 201, response.text
    return dict(response.json())
