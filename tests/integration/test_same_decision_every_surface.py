"""One principal, one model, the same outcome whichever API it calls: allowed or denied alike on
`/v1/chat/completions`, `/v1/messages` and `/v1beta/models/{model}:generateContent`, limited on
one counter shared by all, and recorded with the same usage (each deployment kind: the mock, an
OpenAI-compatible upstream, an Anthropic upstream, a Gemini upstream, a Bedrock upstream; the
call translated where the upstream speaks another API)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from rolegate.authn.dev_issuer import DevIssuer
from tests.integration.test_usage_accounting import usage_rows
from tests.support import bedrock_wire
from tests.support.gateways import bearer
from tests.support.servers import RecordingUpstream

PROMPT = [{"role": "user", "content": "hello there"}]
# How each surface says the same thing: the body, and where its error names what went wrong.
SURFACES = {
    "openai": lambda model: ("/v1/chat/completions", {"model": model, "messages": PROMPT}),
    "anthropic": lambda model: ("/v1/messages", {"model": model, "max_tokens": 32,
                                                 "messages": PROMPT}),
    "gemini": lambda model: (f"/v1beta/models/{model}:generateContent", {"contents": [
        {"role": "user", "parts": [{"text": "hello there"}]}]}),
}
ERROR_KIND = {"permission_error": "denied", "rate_limit_error": "limited",
              "not_found_error": "unknown", "invalid_request_error": "unknown",
              "PERMISSION_DENIED": "denied", "RESOURCE_EXHAUSTED": "limited",
              "NOT_FOUND": "unknown"}


def config(upstream_url: str, database_url: str) -> dict[str, Any]:
    return {
        "models": [
            {"name": "echo", "provider": "mock"},
            {"name": "gpt-4o", "provider": "openai-compatible", "api_base": f"{upstream_url}/v1"},
            {"name": "claude", "provider": "anthropic", "api_base": f"{upstream_url}/v1",
             "api_key": "sk-ant"},
            {"name": "gemini", "provider": "gemini", "api_base": f"{upstream_url}/v1beta",
             "api_key": "AIza-upstream"},
            {"name": "nova", "provider": "bedrock", "api_base": upstream_url,
             "model": "amazon.nova-lite-v1:0", "region": bedrock_wire.REGION,
             "aws_access_key_id": bedrock_wire.ACCESS_KEY,
             "aws_secret_access_key": bedrock_wire.SECRET_KEY},
        ],
        "auth": {"dev_issuer": {"enabled": True}},
        "database": {"url": database_url},
        "accounting": {"flush_interval": 0.05},
        "policy": [
            {"name": "users", "when": {"roles": ["user"]},
             "allow": {"routes": ["inference"],
                       "models": ["echo", "gpt-4o", "claude", "gemini", "nova"]}},
            {"name": "small", "when": {"roles": ["small"]},
             "allow": {"routes": ["inference"], "models": ["echo"]}},
            {"name": "metered", "when": {"roles": ["metered"]},
             "allow": {"routes": ["inference"], "models": ["*"], "limits": {"rpm": 2}}},
        ],
    }


@pytest.fixture
async def gateway(gateway_for, settings_from, upstream: RecordingUpstream,
                  tmp_path: Path) -> Any:
    database = f"sqlite+aiosqlite:///{tmp_path / 'rolegate.db'}"
    client = await gateway_for(settings_from(config(upstream.url, database)))
    client.database = {"url": database}
    return client


def outcome(response: Any) -> tuple[int, str]:
    """The status, and what kind of refusal the body says it is, in either API's shape."""
    if response.status_code == 200:
        return 200, "ok"
    body = response.json()
    if body.get("type") == "error":  # Anthropic's shape
        return response.status_code, ERROR_KIND[body["error"]["type"]]
    if "status" in body["error"]:  # Google's shape
        assert body["error"]["code"] == response.status_code
        return response.status_code, ERROR_KIND[body["error"]["status"]]
    code = body["error"]["code"]
    kind = {"model_not_allowed": "denied", "insufficient_scope": "denied",
            "model_not_found": "unknown"}.get(code, "limited" if response.status_code == 429
                                              else code)
    return response.status_code, kind


async def call(gateway: Any, surface: str, model: str, token: str) -> tuple[int, str]:
    path, body = SURFACES[surface](model)
    return outcome(await gateway.post(path, json=body, headers=bearer(token)))


@pytest.mark.parametrize(("roles", "model", "expected"), [
    (("user",), "echo", (200, "ok")),
    (("user",), "gpt-4o", (200, "ok")),
    (("user",), "claude", (200, "ok")),
    (("user",), "gemini", (200, "ok")),
    (("user",), "nova", (200, "ok")),
    (("small",), "echo", (200, "ok")),
    (("small",), "gpt-4o", (403, "denied")),
    (("small",), "claude", (403, "denied")),
    (("small",), "gemini", (403, "denied")),
    (("small",), "nova", (403, "denied")),
    (("reporting.reader",), "echo", (403, "denied")),
    (("user",), "no-such-model", (403, "denied")),
], ids=["user-mock", "user-openai-upstream", "user-anthropic-upstream",
        "user-gemini-upstream", "user-bedrock-upstream", "small-mock",
        "small-openai-upstream-denied", "small-anthropic-upstream-denied",
        "small-gemini-upstream-denied", "small-bedrock-upstream-denied", "no-grant-denied",
        "unknown-model-denied-before-lookup"])
async def test_a_principal_gets_the_same_decision_on_every_surface(gateway, dev_issuer: DevIssuer,
                                                                   upstream, roles, model,
                                                                   expected):
    token = dev_issuer.mint(subject="svc", roles=roles)
    outcomes = {}
    reached = {}
    for surface in SURFACES:
        seen = len(upstream.requests)
        outcomes[surface] = await call(gateway, surface, model, token)
        reached[surface] = len(upstream.requests) - seen

    assert outcomes == {surface: expected for surface in SURFACES}
    assert reached["openai"] == reached["anthropic"] == reached["gemini"]
    if expected[0] != 200:
        assert reached == {"openai": 0, "anthropic": 0, "gemini": 0}


async def test_limits_are_spent_on_one_counter_whichever_surface_spends_them(gateway,
                                                                             dev_issuer, upstream):
    token = dev_issuer.mint(subject="svc", roles=("metered",))
    spent = [await call(gateway, "gemini", "gpt-4o", token),
             await call(gateway, "anthropic", "gpt-4o", token)]
    seen = len(upstream.requests)
    refused = [await call(gateway, "anthropic", "gpt-4o", token),
               await call(gateway, "openai", "gpt-4o", token),
               await call(gateway, "gemini", "gpt-4o", token)]

    assert spent == [(200, "ok"), (200, "ok")]
    assert refused == [(429, "limited")] * 3
    assert len(upstream.requests) == seen


async def _rows(database: dict[str, Any], expected: int) -> list[dict[str, Any]]:
    for _ in range(100):
        rows = await usage_rows(database)
        if len(rows) >= expected:
            return rows
        await asyncio.sleep(0.05)
    return await usage_rows(database)


COMPARED = ("issuer", "subject", "rule", "model", "provider", "deployment", "status",
            "prompt_tokens", "completion_tokens", "total_tokens", "cost_usd", "estimated")


@pytest.mark.parametrize("model", ["echo", "gpt-4o", "claude", "gemini", "nova"])
async def test_usage_records_are_equal_across_surfaces(gateway, dev_issuer, model):
    token = dev_issuer.mint(subject="svc", roles=("user",))
    for surface in SURFACES:
        assert await call(gateway, surface, model, token) == (200, "ok")

    rows = await _rows(gateway.database, 3)

    assert [row["operation"] for row in rows] == ["chat/completions", "messages",
                                                  "generateContent"]
    chat, messages, gemini = ({name: row[name] for name in COMPARED} for row in rows)
    assert chat == messages == gemini
    assert chat["total_tokens"] > 0 and chat["estimated"] is False


COUNTS = {
    "anthropic": lambda model: ("/v1/messages/count_tokens", {"model": model,
                                                              "messages": PROMPT}),
    "gemini": lambda model: (f"/v1beta/models/{model}:countTokens", {"contents": [
        {"role": "user", "parts": [{"text": "hello there"}]}]}),
}


async def count(gateway: Any, surface: str, model: str, token: str) -> tuple[int, str]:
    path, body = COUNTS[surface](model)
    return outcome(await gateway.post(path, json=body, headers=bearer(token)))


async def test_counting_tokens_is_governed_as_a_call_of_the_model_on_both_surfaces(
        gateway, dev_issuer, upstream):
    """Anthropic's `count_tokens` and Gemini's `countTokens` alike: authorized against the
    model's grant, spending a request of the caller's `rpm` (the same counter as a call),
    and recorded with no tokens charged."""
    small = dev_issuer.mint(subject="small", roles=("small",))
    metered = dev_issuer.mint(subject="metered", roles=("metered",))

    denied = {(surface, model): await count(gateway, surface, model, small)
              for surface in COUNTS for model in ("claude", "gemini")}
    spent = [await count(gateway, "anthropic", "echo", metered),
             await count(gateway, "gemini", "echo", metered)]
    refused = [await count(gateway, surface, "echo", metered) for surface in COUNTS]
    refused.append(await call(gateway, "openai", "echo", metered))
    rows = await _rows(gateway.database, 2)

    assert set(denied.values()) == {(403, "denied")} and upstream.requests == []
    assert spent == [(200, "ok"), (200, "ok")]
    assert refused == [(429, "limited")] * 3
    assert [(row["operation"], row["subject"], row["model"], row["total_tokens"])
            for row in rows] == [("messages/count_tokens", "metered", "echo", 0),
                                 ("countTokens", "metered", "echo", 0)]


@pytest.mark.parametrize(("path", "body"), [
    ("/v1/chat/completions", {"model": "gpt-4o", "messages": [{"role": "user", "content": [
        {"type": "file", "file": {"file_id": "file-of-another-team"}}]}]}),
    ("/v1/responses", {"model": "gpt-4o", "input": "hr policy?", "tools": [
        {"type": "file_search", "vector_store_ids": ["vs_hr"]}]}),
    ("/v1/responses", {"model": "gpt-4o", "input": "go on",
                       "previous_response_id": "resp_of_another_team"}),
    ("/v1/messages", {"model": "claude", "max_tokens": 8, "messages": [{"role": "user", "content": [
        {"type": "document", "source": {"type": "file", "file_id": "file_x"}}]}]}),
    ("/v1beta/models/gemini:generateContent", {"contents": [{"parts": [
        {"fileData": {"fileUri": "gs://payroll/2026.csv", "mimeType": "text/csv"}}]}]}),
], ids=["chat-file", "responses-vector-store", "responses-previous", "messages-file",
        "gemini-gcs-file"])
async def test_content_held_for_the_gateways_key_is_refused_on_every_surface(
        gateway, dev_issuer, upstream, path, body):
    """Granted a model, not the account's uploads, vector stores, responses or buckets."""
    token = dev_issuer.mint(subject="svc", roles=("user",))

    response = await gateway.post(path, json=body, headers=bearer(token))

    assert response.status_code == 400
    assert "names content the upstream holds for the gateway" in response.text
    assert upstream.requests == []


@pytest.mark.parametrize(("path", "body"), [
    ("/v1/messages", {"model": "claude", "max_tokens": 8, "messages": PROMPT, "mcp_servers": [
        {"type": "url", "url": "https://mcp.example.com/sse", "name": "tickets"}]}),
    ("/v1/responses", {"model": "gpt-4o", "input": "close my tickets", "tools": [
        {"type": "mcp", "server_label": "tickets", "server_url": "https://mcp.example.com"}]}),
], ids=["messages-connector", "responses-remote-mcp"])
async def test_an_upstream_hosted_mcp_client_is_refused_on_every_surface(
        gateway, dev_issuer, upstream, path, body):
    """MCP tools run by the vendor would escape `allow.mcp`: they go through /mcp/{server}."""
    token = dev_issuer.mint(subject="svc", roles=("user",))

    response = await gateway.post(path, json=body, headers=bearer(token))

    assert response.status_code == 400
    assert "has the upstream call an MCP server itself" in response.text
    assert upstream.requests == []


# The same call streamed, on each surface (the OpenAI caller asks for its usage chunk).
STREAMS = {
    "openai": lambda model: ("/v1/chat/completions", {
        "model": model, "messages": PROMPT, "stream": True,
        "stream_options": {"include_usage": True}}),
    "anthropic": lambda model: ("/v1/messages", {"model": model, "max_tokens": 32,
                                                 "messages": PROMPT, "stream": True}),
    "gemini": lambda model: (f"/v1beta/models/{model}:streamGenerateContent?alt=sse", {
        "contents": [{"role": "user", "parts": [{"text": "hello there"}]}]}),
}


async def stream(gateway: Any, surface: str, model: str, token: str) -> None:
    path, body = STREAMS[surface](model)
    response = await gateway.post(path, json=body, headers=bearer(token))
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("model", ["echo", "claude", "gemini", "nova"])
async def test_streamed_usage_records_are_equal_across_surfaces(gateway, dev_issuer, model):
    """Deployments that report a stream's usage: each surface charges what they report."""
    token = dev_issuer.mint(subject="svc", roles=("user",))
    for surface in STREAMS:
        await stream(gateway, surface, model, token)

    rows = await _rows(gateway.database, 3)

    assert [(row["operation"], row["is_stream"]) for row in rows] == [
        ("chat/completions", True), ("messages", True), ("generateContent", True)]
    chat, messages, gemini = ({name: row[name] for name in COMPARED} for row in rows)
    assert chat == messages == gemini
    assert chat["total_tokens"] > 0 and chat["estimated"] is False


async def test_a_stream_whose_upstream_reports_no_usage_is_estimated_on_every_surface(
        gateway, dev_issuer):
    """Never charged as free: the recording upstream sends no usage in its streams."""
    token = dev_issuer.mint(subject="svc", roles=("user",))
    for surface in STREAMS:
        await stream(gateway, surface, "gpt-4o", token)

    rows = await _rows(gateway.database, 3)

    assert [(row["operation"], row["estimated"]) for row in rows] == [
        ("chat/completions", True), ("messages", True), ("generateContent", True)]
    assert all(row["prompt_tokens"] > 0 and row["completion_tokens"] > 0 for row in rows)


@pytest.mark.parametrize("model", ["echo", "gpt-4o", "gemini"])
async def test_embeddings_are_charged_on_every_surface(gateway, dev_issuer, model):
    """Gemini's embed replies carry no usage: the prompt is estimated, never charged as free."""
    token = dev_issuer.mint(subject="svc", roles=("user",))
    text = {"parts": [{"text": "hello there"}]}
    for path, body in [
            ("/v1/embeddings", {"model": model, "input": "hello there"}),
            (f"/v1beta/models/{model}:embedContent", {"content": text}),
            (f"/v1beta/models/{model}:batchEmbedContents", {"requests": [{"content": text}]})]:
        response = await gateway.post(path, json=body, headers=bearer(token))
        assert response.status_code == 200, response.text

    rows = await _rows(gateway.database, 3)

    assert [row["operation"] for row in rows] == ["embeddings", "embedContent",
                                                  "batchEmbedContents"]
    assert all(row["prompt_tokens"] > 0 for row in rows), rows
