"""The gateway in-process: every route, authentication before routing, the policy on each route,
and the exact 401/403/404/405 answers. Denied requests never reach the upstream."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import jwt
import pytest

from rolegate.app import build_app
from tests.support.clock import FakeClock
from tests.support.keys import KeyPair, jwks
from tests.support.sample_gateway import (
    AZURE_KEY, CHAT, JWKS_URL, UPSTREAM_KEY, assert_openai_error, bearer, sample_config, token_for,
)


INFERENCE_PATHS = [prefix + op for prefix in ("/v1/", "/")
                   for op in ("chat/completions", "completions", "embeddings", "responses")]


@pytest.mark.parametrize("path", INFERENCE_PATHS)
async def test_every_inference_route_serves_an_allowed_caller(path, gateway, as_role):
    body = {"model": "echo", "messages": [{"role": "user", "content": "hi"}], "input": "hi",
            "prompt": "hi"}
    response = await gateway.post(path, json=body, headers=as_role("user"))
    assert response.status_code == 200, response.text
    assert response.json()["model"] == "echo"


@pytest.mark.parametrize("path", INFERENCE_PATHS)
async def test_every_inference_route_refuses_a_caller_without_a_grant(path, gateway, as_role,
                                                                    upstream):
    body = {"model": "gpt-4o", "input": "hi", "prompt": "hi", "messages": []}
    response = await gateway.post(path, json=body, headers=as_role("nobody"))
    assert response.status_code == 403
    assert_openai_error(response.json(), "insufficient_scope")
    assert upstream.requests == []


@pytest.mark.parametrize("path", ["/v1/models", "/models"])
async def test_model_list_shows_only_permitted_models(path, gateway, as_role):
    user = await gateway.get(path, headers=as_role("user"))
    power = await gateway.get(path, headers=as_role("power"))
    reader = await gateway.get(path, headers=as_role(scope="models.read"))

    assert [m["id"] for m in user.json()["data"]] == ["gpt-4o-mini", "azure-4o", "echo"]
    assert [m["id"] for m in power.json()["data"]] == ["gpt-4o", "gpt-4o-mini", "azure-4o",
                                                       "echo"]
    assert [m["id"] for m in reader.json()["data"]] == ["echo"]
    assert user.json()["object"] == "list"


async def test_model_list_without_the_info_route_is_403(gateway, as_role):
    response = await gateway.get("/v1/models", headers=as_role("admin"))
    assert response.status_code == 403
    assert_openai_error(response.json(), "insufficient_scope")


async def test_model_retrieval_allowed_denied_and_unknown(gateway, as_role):
    allowed = await gateway.get("/v1/models/echo", headers=as_role("user"))
    denied = await gateway.get("/v1/models/gpt-4o", headers=as_role("user"))
    unknown = await gateway.get("/v1/models/no-such-model", headers=as_role("power"))
    unknown_denied = await gateway.get("/v1/models/no-such-model", headers=as_role("user"))

    assert allowed.status_code == 200 and allowed.json()["id"] == "echo"
    assert denied.status_code == 403
    assert_openai_error(denied.json(), "model_not_allowed")
    assert denied.json()["error"]["param"] == "model"
    assert unknown.status_code == 404
    assert_openai_error(unknown.json(), "model_not_found")
    assert unknown_denied.status_code == 403


async def test_model_outside_the_callers_grant_is_403_model_not_allowed(gateway, as_role,
                                                                      upstream):
    response = await gateway.post("/v1/chat/completions", json={**CHAT, "model": "gpt-4o"},
                                  headers=as_role("user"))
    assert response.status_code == 403
    assert_openai_error(response.json(), "model_not_allowed")
    assert "rule 'power' needs roles any of ['power']" in response.json()["error"]["message"]
    assert 'error="insufficient_scope"' in response.headers["www-authenticate"]
    assert upstream.requests == []


async def test_allowed_model_that_does_not_exist_is_404(gateway, as_role):
    response = await gateway.post("/v1/chat/completions", json={**CHAT, "model": "gpt-5"},
                                  headers=as_role("power"))
    assert response.status_code == 404
    assert_openai_error(response.json(), "model_not_found")


async def test_allowed_call_reaches_the_upstream_with_its_credential_not_the_callers(
        gateway, as_role, upstream):
    headers = as_role("power")
    response = await gateway.post("/v1/chat/completions", json={**CHAT, "model": "gpt-4o"},
                                  headers=headers)

    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == "from upstream"
    [seen] = upstream.requests
    sent = {name.lower(): value for name, value in seen.headers.items()}
    assert seen.path == "/v1/chat/completions"
    assert sent["authorization"] == f"Bearer {UPSTREAM_KEY}"
    assert headers["Authorization"].split()[1] not in str(seen.headers)
    assert response.headers["x-request-id"] == sent["x-request-id"]


async def test_public_model_name_is_rewritten_to_the_upstream_model(gateway, as_role, upstream):
    response = await gateway.post("/v1/chat/completions",
                                  json={**CHAT, "model": "gpt-4o-mini", "temperature": 0.2},
                                  headers=as_role("user"))
    assert response.status_code == 200
    assert upstream.requests[0].json() == {**CHAT, "model": "upstream-mini", "temperature": 0.2}


async def test_end_user_claim_is_forwarded_as_user(gateway, as_role, upstream):
    response = await gateway.post("/v1/chat/completions",
                                  json={**CHAT, "model": "gpt-4o", "user": "spoofed"},
                                  headers=as_role("power", email="ada@example.com"))
    assert response.status_code == 200
    assert upstream.requests[0].json()["user"] == "ada@example.com"


async def test_streamed_chat_is_relayed_as_server_sent_events(gateway, as_role, upstream):
    response = await gateway.post("/v1/chat/completions",
                                  json={**CHAT, "model": "gpt-4o", "stream": True},
                                  headers=as_role("power"))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = [line for line in response.text.splitlines() if line.startswith("data: ")]
    assert events[-1] == "data: [DONE]"
    assert len(events) == upstream.stream_chunks + 1


# --- Azure-style deployment routes -------------------------------------------------------------

AZURE_PATH = "/openai/deployments/{name}/chat/completions?api-version=2024-10-21"


async def test_azure_route_checks_the_policy_on_the_deployment_name(gateway, as_role, upstream):
    allowed = await gateway.post(AZURE_PATH.format(name="azure-4o"),
                                 json={"messages": CHAT["messages"]}, headers=as_role("user"))
    denied = await gateway.post(AZURE_PATH.format(name="gpt-4o"),
                                json={"messages": CHAT["messages"]}, headers=as_role("user"))

    assert allowed.status_code == 200, allowed.text
    assert denied.status_code == 403
    assert_openai_error(denied.json(), "model_not_allowed")
    [seen] = upstream.requests
    sent = {name.lower(): value for name, value in seen.headers.items()}
    assert seen.path == "/openai/deployments/dep-4o/chat/completions"
    assert seen.query == "api-version=2024-10-21"
    assert sent["api-key"] == AZURE_KEY
    assert "authorization" not in sent


async def test_azure_route_ignores_a_model_named_in_the_body(gateway, as_role, upstream):
    response = await gateway.post(AZURE_PATH.format(name="gpt-4o"),
                                  json={**CHAT, "model": "echo"}, headers=as_role("user"))
    assert response.status_code == 403
    assert upstream.requests == []


async def test_azure_route_for_an_allowed_unknown_deployment_is_404(gateway, as_role):
    response = await gateway.post(AZURE_PATH.format(name="azure-unknown"),
                                  json={"messages": []}, headers=as_role("user"))
    assert response.status_code == 404
    assert_openai_error(response.json(), "model_not_found")


# --- paths that are not routes: authentication first --------------------------------------------

ODD_PATHS = ["/v1//chat/completions", "/v1/./models", "/v1/models/../admin/policy",
             "/v1/./chat/completions", "/V1/chat/completions", "/v1/Chat/Completions",
             "/v1/nothing", "/", "/v1/chat/completions/", "/openai/deployments//chat/completions",
             "/openai/deployments/../../admin/policy"]


@dataclass
class RawResponse:
    status_code: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


async def send_raw(app: Any, method: str, raw_path: str,
                   headers: dict[str, str]) -> RawResponse:
    """Call the ASGI app with `raw_path` exactly as a server passes it on: httpx would resolve
    `.` and `..` segments before sending, so it is bypassed here."""
    body = json.dumps(CHAT).encode()
    scope = {"type": "http", "method": method, "path": raw_path, "raw_path": raw_path.encode(),
             "query_string": b"", "headers": [(k.lower().encode(), v.encode())
                                              for k, v in headers.items()]}
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return RawResponse(sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:]))


@pytest.fixture
def app(settings_from, upstream, published, clock) -> Any:
    return build_app(settings_from(sample_config(upstream.url)), clock=clock, fetch=published)


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("path", ODD_PATHS)
async def test_odd_path_is_404_for_an_authenticated_caller(path, method, app, as_role,
                                                           upstream):
    response = await send_raw(app, method, path, as_role("power", "admin"))
    assert response.status_code == 404
    assert_openai_error(response.json(), "unknown_route")
    assert upstream.requests == []


@pytest.mark.parametrize("path", ODD_PATHS)
async def test_odd_path_is_401_for_an_unauthenticated_caller(path, app):
    response = await send_raw(app, "POST", path, {})
    assert response.status_code == 401
    assert_openai_error(response.json(), "missing_token")


@pytest.mark.parametrize(("method", "path"), [("GET", "/v1/chat/completions"),
                                              ("POST", "/v1/models"),
                                              ("DELETE", "/v1/models/echo"),
                                              ("PUT", "/admin/policy")])
async def test_wrong_method_is_405(method, path, gateway, as_role):
    response = await gateway.request(method, path, headers=as_role("power", "admin"))
    assert response.status_code == 405
    assert_openai_error(response.json(), "method_not_allowed")


async def test_wrong_method_without_a_token_is_401(gateway):
    response = await gateway.get("/v1/chat/completions")
    assert response.status_code == 401


# --- admin -------------------------------------------------------------------------------------

async def test_admin_policy_needs_the_admin_route_group(gateway, as_role):
    response = await gateway.get("/admin/policy", headers=as_role("power", "user"))
    assert response.status_code == 403
    assert_openai_error(response.json(), "insufficient_scope")


async def test_admin_policy_shows_the_effective_policy_without_secrets(gateway, as_role):
    response = await gateway.get("/admin/policy", headers=as_role("admin"))

    assert response.status_code == 200
    view = response.json()
    assert [rule["name"] for rule in view["rules"]] == ["users", "power", "readers", "admins"]
    assert [issuer["name"] for issuer in view["issuers"]] == ["idp"]
    assert AZURE_KEY not in response.text and UPSTREAM_KEY not in response.text
    assert all("api_key" not in model for model in view["models"])


async def test_unknown_admin_path_is_403_for_non_admins_and_404_for_admins(gateway, as_role):
    assert (await gateway.get("/admin/users", headers=as_role("user"))).status_code == 403
    response = await gateway.get("/admin/users", headers=as_role("admin"))
    assert response.status_code == 404
    assert_openai_error(response.json(), "unknown_route")


# --- credentials -------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/health/live", "/health/ready"])
async def test_health_endpoints_need_no_token(path, gateway):
    response = await gateway.get(path)
    assert response.status_code in (200, 503)
    assert response.json()["status"] in ("ok", "unavailable")
    assert "www-authenticate" not in response.headers


async def test_readiness_turns_ok_once_the_keys_are_loaded(gateway, as_role):
    waiting = await gateway.get("/health/ready")
    assert waiting.status_code == 503
    assert set(waiting.json()["not_ready"].values()) == {"signing keys not fetched yet"}
    await gateway.get("/v1/models", headers=as_role("user"))
    assert (await gateway.get("/health/ready")).json() == {"status": "ok"}


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "Bearer"])
async def test_bearer_scheme_is_case_insensitive(scheme, gateway, rsa_key, clock):
    token = token_for(rsa_key, clock, roles=["user"])
    response = await gateway.get("/v1/models", headers={"Authorization": f"{scheme} {token}"})
    assert response.status_code == 200


async def test_token_in_the_query_string_is_refused_even_with_a_good_header(
        gateway, rsa_key, clock, upstream):
    token = token_for(rsa_key, clock, roles=["power"])
    response = await gateway.post(f"/v1/chat/completions?access_token={token}",
                                  json={**CHAT, "model": "gpt-4o"}, headers=bearer(token))
    assert response.status_code == 401
    assert_openai_error(response.json(), "token_in_query")
    assert upstream.requests == []


async def test_authorization_header_over_the_limit_is_401(client_for, settings_from, upstream,
                                                          published, rsa_key, clock):
    gateway = client_for(settings_from(sample_config(upstream.url, max_auth_header_bytes=512)))
    token = token_for(rsa_key, clock, roles=["user"], padding="x" * 600)
    response = await gateway.get("/v1/models", headers=bearer(token))
    assert response.status_code == 401
    assert_openai_error(response.json(), "invalid_token")
    assert published.fetches == []


def unauthenticated_cases(rsa_key: KeyPair, rsa_key_2: KeyPair, clock: FakeClock
                          ) -> list[tuple[str, dict[str, str], str]]:
    good = token_for(rsa_key, clock, roles=["power"])
    return [
        ("no-header", {}, "missing_token"),
        ("basic", {"Authorization": "Basic dXNlcjpwYXNzd29yZA=="}, "invalid_token"),
        ("empty-bearer", {"Authorization": "Bearer "}, "invalid_token"),
        ("not-a-jwt", bearer("secret-looking-api-key"), "invalid_token"),
        ("expired", bearer(token_for(rsa_key, clock, roles=["power"], exp_in=-3600)),
         "token_expired"),
        ("other-key", bearer(rsa_key_2.sign({**_claims_of(good)}, {"kid": rsa_key.kid})),
         "invalid_signature"),
        ("two-headers", {"Authorization": f"Bearer {good}, Bearer {good}"}, "invalid_token"),
    ]


def _claims_of(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


@pytest.mark.parametrize("case", range(7), ids=["no-header", "basic", "empty-bearer",
                                                "not-a-jwt", "expired", "other-key",
                                                "two-headers"])
async def test_every_401_has_a_challenge_and_an_openai_body_without_the_credential(
        case, gateway, rsa_key, rsa_key_2, clock, upstream):
    _, headers, code = unauthenticated_cases(rsa_key, rsa_key_2, clock)[case]

    response = await gateway.post("/v1/chat/completions", json={**CHAT, "model": "gpt-4o"},
                                  headers=headers)

    assert response.status_code == 401
    assert_openai_error(response.json(), code)
    assert response.json()["error"]["type"] == "authentication_error"
    assert response.headers["www-authenticate"] == \
        'Bearer realm="rolegate", error="invalid_token"'
    credential = headers.get("Authorization", "").partition(" ")[2]
    for part in [credential, *credential.split(".")]:
        if len(part) > 8:
            assert part not in response.text
    assert upstream.requests == []


async def test_key_set_that_cannot_be_fetched_is_503_and_nothing_is_forwarded(
        client_for, settings_from, upstream, rsa_key, clock, key_source):
    gateway = client_for(settings_from(sample_config(upstream.url)))
    key_source.is_down = True
    response = await gateway.post("/v1/chat/completions", json={**CHAT, "model": "gpt-4o"},
                                  headers=bearer(token_for(rsa_key, clock, roles=["power"])))
    assert response.status_code == 503
    assert_openai_error(response.json(), "jwks_unavailable")
    assert upstream.requests == []


async def test_a_malformed_entry_in_the_key_set_does_not_break_the_good_keys(
        client_for, settings_from, upstream, rsa_key, clock, key_source):
    bad = {"kty": "RSA", "kid": "broken", "alg": "HS256", "n": "AQAB", "e": "AQAB"}
    key_source.documents[JWKS_URL] = (
        b'{"keys": [' + json.dumps(bad).encode() + b", "
        + jwks(rsa_key)[len(b'{"keys": ['):])
    gateway = client_for(settings_from(sample_config(upstream.url)))
    response = await gateway.get("/v1/models",
                                 headers=bearer(token_for(rsa_key, clock, roles=["user"])))
    assert response.status_code == 200


async def test_each_decision_is_logged_as_one_json_line_without_the_token(
        gateway, rsa_key, clock, caplog):
    token = token_for(rsa_key, clock, roles=["user"], email="ada@example.com")
    with caplog.at_level(logging.INFO, logger="rolegate.decision"):
        await gateway.post("/v1/chat/completions", json={**CHAT, "model": "gpt-4o"},
                           headers=bearer(token))
        await gateway.post("/v1/chat/completions", json=CHAT, headers=bearer(token))

    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "rolegate.decision"]
    assert [(line["decision"], line["model"], line["rule"], line["code"]) for line in lines] == [
        ("deny", "gpt-4o", None, "model_not_allowed"), ("allow", "echo", "users", "allowed")]
    assert lines[0]["issuer"] == "idp" and lines[0]["end_user"] == "ada@example.com"
    assert "rule 'power' needs" in lines[0]["reason"]
    for part in token.split("."):
        assert part not in caplog.text
