"""Every route in the route table, under four credentials: none (401), a valid token granted
nothing (403), a virtual API key granted every group but the route's (403), and a token granted
the route's group (its success status). A refused request reaches no upstream.

The routes come from the table itself (`api/routes.py` `ROUTES`), so a route added later is
walked without touching this file; an operation this file does not know how to call fails the
walk. Each route is judged on its own: the walk returns one line per route that answered wrong.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from rolegate.api.routes import (
    ANTHROPIC_OPERATIONS, ANY_METHOD, GEMINI_OPERATIONS, ROUTES, Operation, RouteGroup, RouteSpec,
)
from rolegate.authn.dev_issuer import DevIssuer
from tests.support.gateways import bearer
from tests.support.sample_gateway import CHAT, assert_openai_error
from tests.support.scrape import Scrape
from tests.support.servers import RecordingUpstream
from tests.support.storage import PEPPER

CHAT_BODY = {"messages": [{"role": "user", "content": "hi"}], "input": "hi", "prompt": "hi"}
INFERENCE_OK = (200, None)
# How to call each operation, and what a caller granted its group gets. Inference bodies name
# the model; Azure paths name it in the path instead.
SUCCESS: dict[Operation, tuple[int, str | None]] = {
    **{operation: INFERENCE_OK for operation in Operation if "." not in operation},
    Operation.MODELS_LIST: (200, None), Operation.GEMINI_MODELS_LIST: (200, None),
    Operation.MODELS_GET: (200, None), Operation.GEMINI_MODELS_GET: (200, None),
    Operation.ADMIN_POLICY: (200, None), Operation.ADMIN_OPENAPI: (200, None),
    Operation.ADMIN_USAGE: (200, None), Operation.ADMIN_METRICS: (200, None),
    Operation.ADMIN_KEYS_LIST: (200, None), Operation.ADMIN_KEYS_CREATE: (201, None),
    Operation.ADMIN_KEYS_GET: (200, None), Operation.ADMIN_KEYS_UPDATE: (200, None),
    Operation.ADMIN_KEYS_REVOKE: (200, None),
    # Found only to be refused to callers without group `admin`; to the others, a 404.
    Operation.ADMIN_UNKNOWN: (404, "unknown_route"),
    # The walk configures no MCP server: a caller granted group `mcp` learns that, and only it.
    Operation.MCP: (404, "unknown_mcp_server"),
    # The console, called with a bearer credential (a browser's session is tested apart).
    Operation.CONSOLE_HOME: (200, None), Operation.CONSOLE_KEYS: (200, None),
    Operation.CONSOLE_KEYS_CREATE: (200, None), Operation.CONSOLE_KEYS_REVOKE: (303, None),
    Operation.CONSOLE_EXPLAIN: (200, None), Operation.CONSOLE_SIGN_OUT: (200, None),
    Operation.CONSOLE_DECISIONS: (200, None), Operation.CONSOLE_USAGE: (200, None),
    Operation.CONSOLE_USAGE_CSV: (200, None), Operation.CONSOLE_POLICY: (200, None),
    Operation.CONSOLE_KEYS_EDIT: (200, None), Operation.CONSOLE_KEYS_UPDATE: (303, None),
}
# A console page asked for with no credential at all sends the browser to sign in.
CONSOLE_WITHOUT_CREDENTIAL = (303, None)
BODIES: dict[Operation, dict[str, Any]] = {
    Operation.ADMIN_KEYS_CREATE: {"name": "made-by-the-walk", "owner": "ops"},
    Operation.ADMIN_KEYS_UPDATE: {"name": "renamed-by-the-walk"},
    Operation.CONSOLE_KEYS_CREATE: {"name": "made-in-the-console", "owner": "ops"},
    Operation.CONSOLE_KEYS_UPDATE: {"rpm": "10"},
    Operation.CONSOLE_EXPLAIN: {"credential": "rg-not-a-key", "route": "/v1/models"},
}
# Anthropic's API answers in its own error shape: a `type` where OpenAI's has a `code`.
ANTHROPIC_BODY = {"model": "claude", "max_tokens": 8, "messages": [{"role": "user",
                                                                     "content": "hi"}]}
ANTHROPIC_TYPES = {"missing_token": "authentication_error",
                   "insufficient_scope": "permission_error"}
CREDENTIALS = ("none", "token_without_grant", "key_without_the_group", "token_with_the_group")
REFUSED = {"none": (401, "missing_token"), "token_without_grant": (403, "insufficient_scope"),
           "key_without_the_group": (403, "insufficient_scope")}


def role(group: RouteGroup) -> str:
    return f"{group}.caller"


def table_config(upstream_url: str, database_url: str) -> dict[str, Any]:
    """One rule per route group, each granting that group only; every feature an admin route
    serves (keys, usage, metrics) is on."""
    return {
        "models": [
            {"name": "gpt-4o", "provider": "openai-compatible", "api_base": f"{upstream_url}/v1"},
            {"name": "azure-4o", "provider": "azure", "api_base": upstream_url,
             "deployment": "dep-4o", "api_version": "2024-10-21", "api_key": "azure-key"},
            {"name": "claude", "provider": "anthropic", "api_base": f"{upstream_url}/v1",
             "api_key": "anthropic-key"},
        ],
        "auth": {"dev_issuer": {"enabled": True}},
        "database": {"url": database_url},
        "keys": {"enabled": True, "pepper": PEPPER, "cache_ttl": 0},
        "server": {"metrics": {"enabled": True, "public": False}},
        "policy": [{"name": f"{group}-only", "when": {"roles": [role(group)]},
                    "allow": {"routes": [group.value], "models": ["*"]}}
                   for group in RouteGroup],
    }


@dataclass(frozen=True)
class Call:
    spec: RouteSpec
    method: str
    path: str
    body: dict[str, Any] | None

    def __str__(self) -> str:
        return f"{self.method} {self.path} ({self.spec.operation})"


GEMINI_CONTENT = {"role": "user", "parts": [{"text": "hi"}]}
GEMINI_BODY = {"contents": [GEMINI_CONTENT]}
GEMINI_BODIES = {Operation.EMBED_CONTENT: {"content": GEMINI_CONTENT},
                 Operation.BATCH_EMBED_CONTENTS: {"requests": [{"content": GEMINI_CONTENT}]}}


def calls(key_id: str) -> list[Call]:
    """One call per route of the table (two for a route taking any method)."""
    made = []
    for spec in ROUTES:
        is_azure = spec.path.startswith("/openai/")
        path = spec.path.format(model="azure-4o" if is_azure else "gpt-4o", key_id=key_id,
                                rest="no-such-admin-route", server="no-such-server")
        body = BODIES.get(spec.operation)
        if spec.group is RouteGroup.INFERENCE:
            body = CHAT_BODY if is_azure else {**CHAT_BODY, "model": "gpt-4o"}
        if spec.operation in ANTHROPIC_OPERATIONS:
            body = ANTHROPIC_BODY
        if spec.operation in GEMINI_OPERATIONS:  # the model is the path's; streams are SSE
            body = GEMINI_BODIES.get(spec.operation, GEMINI_BODY)
            path += "?alt=sse" if spec.operation == Operation.STREAM_GENERATE_CONTENT else ""
        methods = ("GET", "DELETE") if spec.method == ANY_METHOD else (spec.method,)
        made += [Call(spec, method, path, body) for method in methods]
    return made


Send = Callable[[Call, dict[str, str]], Awaitable[httpx.Response]]


@dataclass
class Walk:
    """The gateway under test and a credential for each of the four cases."""

    send: Send
    upstream: RecordingUpstream
    headers: Callable[[str, RouteGroup], dict[str, str]]
    key_id: str

    async def problems(self, credential: str) -> list[str]:
        """Each route that answered `credential` other than its group demands, in words."""
        found = []
        for call in calls(self.key_id):
            seen = len(self.upstream.requests)
            response = await self.send(call, self.headers(credential, call.spec.group))
            status, code = REFUSED.get(credential) or SUCCESS[call.spec.operation]
            if call.spec.operation in ANTHROPIC_OPERATIONS and code is not None:
                code = ANTHROPIC_TYPES[code]
            if credential == "none" and call.path.startswith("/console"):
                status, code = CONSOLE_WITHOUT_CREDENTIAL
            got_code = _code(response)
            if response.status_code != status or (code is not None and got_code != code):
                found.append(f"{call}: {response.status_code} {got_code}, expected {status} "
                             f"{code}")
            if credential in REFUSED and len(self.upstream.requests) != seen:
                found.append(f"{call}: refused, yet the upstream was called")
        return found


def _code(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and body.get("type") == "error":  # Anthropic's shape
        return error.get("type")
    if isinstance(error, dict) and "status" in error:  # Google's: the code is the reason
        return str(error["details"][0]["reason"])
    return error.get("code") if isinstance(error, dict) else None


@pytest.fixture
async def walk(gateway_for: Callable[..., Any], settings_from: Callable[..., Any],
               upstream: RecordingUpstream, dev_issuer: DevIssuer, tmp_path: Path) -> Walk:
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'rolegate.db'}"
    client: httpx.AsyncClient = await gateway_for(
        settings_from(table_config(upstream.url, database_url)))
    admin = bearer(dev_issuer.mint(subject="ops", roles=(role(RouteGroup.ADMIN),)))

    async def create_key(roles: list[str]) -> dict[str, Any]:
        response = await client.post("/admin/keys", headers=admin,
                                     json={"name": "walk", "owner": "svc", "roles": roles})
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    keys_without = {group: (await create_key([role(other) for other in RouteGroup
                                              if other is not group]))["key"]
                    for group in RouteGroup}
    target = await create_key([])
    tokens_with = {group: dev_issuer.mint(subject="caller", roles=(role(group),))
                   for group in RouteGroup}
    nobody = dev_issuer.mint(subject="nobody", roles=("reporting.reader",))

    def headers(credential: str, group: RouteGroup) -> dict[str, str]:
        return {"none": {}, "token_without_grant": bearer(nobody),
                "key_without_the_group": bearer(keys_without[group]),
                "token_with_the_group": bearer(tokens_with[group])}[credential]

    async def send(call: Call, headers: dict[str, str]) -> httpx.Response:
        if call.path.startswith("/console"):  # the console's forms are urlencoded
            return await client.request(call.method, call.path, data=call.body,
                                        headers=headers)
        return await client.request(call.method, call.path, json=call.body, headers=headers)

    return Walk(send, upstream, headers, target["id"])


@pytest.mark.parametrize("credential", CREDENTIALS)
async def test_every_route_answers_each_credential_as_its_group_demands(walk, credential):
    assert await walk.problems(credential) == []


async def test_the_walk_names_a_route_whose_authorization_was_removed(walk):
    """A route that lets a caller in whatever the caller holds (here: the request's credential
    swapped for one granted the group, for `/admin/usage` only) is reported, and only it."""
    send = walk.send

    async def leaky(call: Call, headers: dict[str, str]) -> httpx.Response:
        if call.spec.operation is Operation.ADMIN_USAGE:
            headers = walk.headers("token_with_the_group", call.spec.group)
        return await send(call, headers)

    walk.send = leaky

    for credential in REFUSED:
        assert await walk.problems(credential) == [
            "GET /admin/usage (admin.usage): 200 None, expected "
            f"{REFUSED[credential][0]} {REFUSED[credential][1]}"]


def test_the_walk_knows_how_to_call_every_operation():
    assert set(SUCCESS) == set(Operation)
    assert {spec.operation for spec in ROUTES} == set(Operation)


async def test_a_group_refused_at_the_front_door_is_logged_and_counted_once(gateway, as_role,
                                                                          upstream, caplog):
    """The sample gateway's `admins` hold route group `admin` only: asking for inference is
    refused before the body is read, with the decision line and counter every denial gets."""
    with caplog.at_level(logging.INFO, logger="rolegate.decision"):
        response = await gateway.post("/v1/chat/completions", json=CHAT,
                                      headers=as_role("admin"))

    assert response.status_code == 403
    assert_openai_error(response.json(), "insufficient_scope")
    assert "route group 'inference'" in response.json()["error"]["message"]
    lines = [json.loads(record.getMessage()) for record in caplog.records
             if record.name == "rolegate.decision"]
    assert [(line["decision"], line["route"], line["model"], line["code"]) for line in lines] \
        == [("deny", "inference", None, "insufficient_scope")]
    metrics = Scrape((await gateway.get("/metrics")).text)
    assert metrics.value("rolegate_authz_decisions_total", decision="deny", rule="_none") == 1
    assert upstream.requests == []


async def test_a_model_refused_by_the_handler_names_the_model_and_its_group(gateway, as_role):
    response = await gateway.post("/v1/chat/completions", json={**CHAT, "model": "gpt-4o"},
                                  headers=as_role("user"))

    assert response.status_code == 403
    assert_openai_error(response.json(), "model_not_allowed")
    assert response.json()["error"]["message"].startswith(
        "Access to model 'gpt-4o' on route group 'inference' (/v1/chat/completions) is not "
        "granted to this caller")
