"""Fixtures for the interop tests: the oidc-provider fixture (provider.mjs) and rolegate as a real
process trusting it through discovery only.

Without Node.js or `npm ci --prefix tests/interop` these tests are skipped, unless
`REQUIRE_INTEROP=1` (set by `.ci/run`) makes that a failure.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio

from tests.interop.idp import (
    client_credentials_token, node_available, provider_installed, run_provider,
)
from tests.support.process import GatewayProcess
from tests.support.servers import RecordingUpstream

CLIENTS = {"svc-admin": "svc-admin-secret", "svc-scoped": "svc-scoped-secret",
           "svc-none": "svc-none-secret"}


def _missing() -> str | None:
    if not node_available():
        return "node is not installed"
    if not provider_installed():
        return "oidc-provider is not installed (run `npm ci --prefix tests/interop`)"
    return None


@pytest.fixture(autouse=True)
def _provider_available() -> None:
    reason = _missing()
    if reason is None:
        return
    if os.environ.get("REQUIRE_INTEROP") == "1":
        pytest.fail(f"interop tests are required here, but {reason}")
    pytest.skip(reason)


def gateway_config(issuer: str, upstream_url: str, *, jwks_ttl: float = 600) -> str:
    """rolegate trusting the provider by discovery only; Gateway.User gets everything, the
    chat.invoke scope gets inference on the mock model `echo`."""
    return f"""
models:
  - {{name: echo, provider: mock}}
  - {{name: gpt-4o, provider: openai-compatible, api_base: "{upstream_url}/v1"}}
auth:
  issuers:
    - name: oidc
      issuer: "{issuer}"
      discovery_url: "{issuer}/.well-known/openid-configuration"
      audiences: ["api://rolegate"]
      token_types: [at+jwt]
      jwks_ttl: {jwks_ttl}
policy:
  - name: gateway-users
    when: {{roles: [Gateway.User]}}
    allow: {{routes: [inference, info], models: ["*"]}}
  - name: chat-scope
    when: {{scopes: [chat.invoke]}}
    allow: {{routes: [inference], models: [echo]}}
logging: {{level: info}}
"""


async def token(issuer: str, client: str, scope: str | None = None,
                resource: str | None = "api://rolegate") -> str:
    """A client-credentials token from the provider (its HTTP call runs off the event loop)."""
    return await asyncio.to_thread(client_credentials_token, issuer, client, CLIENTS[client],
                                   scope=scope, resource=resource)


@pytest.fixture(scope="module")
def issuer() -> Iterator[str]:
    if _missing():
        pytest.skip(_missing())
    with run_provider(0, timeout=60) as url:
        yield url


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def upstream() -> AsyncIterator[RecordingUpstream]:
    async with RecordingUpstream() as server:
        yield server  # type: ignore[misc]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def gateway(issuer: str, upstream: RecordingUpstream,
                  tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[GatewayProcess]:
    workdir = tmp_path_factory.mktemp("interop-gateway")
    async with GatewayProcess(gateway_config(issuer, upstream.url), workdir,
                              ready_path="/health/ready") as process:
        yield process
