"""Azure with Entra ID client credentials: the gateway fetches its own upstream token from the
token endpoint, caches it until shortly before expiry and renews it once for all callers."""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qs

from aiohttp import web

from tests.support.servers import LocalServer

CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
SCOPE = "https://cognitiveservices.azure.com/.default"


class TokenEndpoint(LocalServer):
    def __init__(self, *, expires_in: int = 3600, status: int = 200) -> None:
        super().__init__()
        self.forms: list[dict[str, list[str]]] = []
        self.expires_in = expires_in
        self.status = status
        self.app.router.add_post("/oauth2/v2.0/token", self._token)

    async def _token(self, request: web.Request) -> web.Response:
        self.forms.append(parse_qs((await request.read()).decode()))
        await asyncio.sleep(0.05)  # slow enough for concurrent callers to overlap
        if self.status != 200:
            return web.json_response({"error": "invalid_client"}, status=self.status)
        return web.json_response({"token_type": "Bearer", "expires_in": self.expires_in,
                                  "access_token": f"token-{len(self.forms)}"})


def azure_model(upstream, endpoint):
    return [{"name": "gpt-4o", "id": "azure-east", "provider": "azure", "api_base": upstream.url,
             "deployment": "gpt-4o-prod", "api_version": "2024-10-21",
             "auth": {"type": "entra_client_credentials",
                      "token_url": f"{endpoint.url}/oauth2/v2.0/token",
                      "client_id": "gateway-app", "client_secret": "s3cret"}}]


async def test_upstream_token_is_fetched_once_for_concurrent_requests_and_sent_as_bearer(
        upstreams, routing_settings, client_for, auth_for):
    (upstream,) = await upstreams("azure")
    async with TokenEndpoint() as endpoint:
        client = client_for(routing_settings(azure_model(upstream, endpoint)))

        responses = await asyncio.gather(*[
            client.post("/v1/chat/completions", json=CHAT, headers=auth_for("user"))
            for _ in range(5)])

    assert [r.status_code for r in responses] == [200] * 5
    assert len(endpoint.forms) == 1
    assert endpoint.forms[0] == {"grant_type": ["client_credentials"],
                                 "client_id": ["gateway-app"], "client_secret": ["s3cret"],
                                 "scope": [SCOPE]}
    assert {r.headers["Authorization"] for r in upstream.requests} == {"Bearer token-1"}
    assert upstream.requests[0].path == "/openai/deployments/gpt-4o-prod/chat/completions"
    assert "api-key" not in {name.lower() for name in upstream.requests[0].headers}


async def test_upstream_token_is_renewed_shortly_before_it_expires(
        upstreams, routing_settings, client_for, auth_for, clock):
    (upstream,) = await upstreams("azure")
    async with TokenEndpoint(expires_in=3600) as endpoint:
        client = client_for(routing_settings(azure_model(upstream, endpoint)))
        await client.post("/v1/chat/completions", json=CHAT, headers=auth_for("user"))
        clock.advance(3000)  # still well before expiry minus the margin
        await client.post("/v1/chat/completions", json=CHAT, headers=auth_for("user"))
        clock.advance(400)  # inside the last five minutes
        await client.post("/v1/chat/completions", json=CHAT, headers=auth_for("user"))

    assert len(endpoint.forms) == 2
    assert [r.headers["Authorization"] for r in upstream.requests] == \
        ["Bearer token-1", "Bearer token-1", "Bearer token-2"]


async def test_token_endpoint_refusing_is_502_and_the_upstream_sees_nothing(
        upstreams, routing_settings, client_for, auth_for):
    (upstream,) = await upstreams("azure")
    async with TokenEndpoint(status=401) as endpoint:
        client = client_for(routing_settings(azure_model(upstream, endpoint),
                                             retries={"max_attempts": 1}))
        response = await client.post("/v1/chat/completions", json=CHAT,
                                     headers=auth_for("user"))

    assert response.status_code == 502
    assert response.json()["error"]["code"] == "upstream_auth_failed"
    assert "s3cret" not in response.text
    assert upstream.requests == []
