"""Request logs in-process: one `rolegate.access` line per request whatever its outcome, a
`rolegate.decision` line for every 401, the request id taken from the caller only when it is
safe, and no token, API key or request body in any log line."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from rolegate.authn.dev_issuer import DevIssuer
from tests.support.gateways import keyed_config
from tests.support.sample_gateway import CHAT, bearer, sample_config, token_for


def lines(caplog: pytest.LogCaptureFixture, logger: str) -> list[dict[str, Any]]:
    return [json.loads(record.getMessage()) for record in caplog.records if record.name == logger]


async def test_each_request_gets_one_access_line_with_who_and_where(gateway, as_role, caplog):
    with caplog.at_level(logging.INFO, logger="rolegate"):
        response = await gateway.post("/v1/chat/completions",
                                      json={**CHAT, "model": "gpt-4o-mini"},
                                      headers=as_role("user", sub="alice", azp="portal"))

    [line] = lines(caplog, "rolegate.access")
    assert line == {
        "event": "request", "request_id": response.headers["x-request-id"], "method": "POST",
        "path": "/v1/chat/completions", "route_group": "inference", "status": 200,
        "duration_ms": line["duration_ms"], "issuer": "idp", "subject": "alice",
        "client_id": "portal", "key_id": None, "model": "gpt-4o-mini",
        "served_model": "gpt-4o-mini", "deployment": "gpt-4o-mini", "attempts": 1,
    }
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0


@pytest.mark.parametrize(("method", "path", "role", "status", "route_group"), [
    ("GET", "/health/live", None, 200, "public"),
    ("GET", "/metrics", None, 200, "public"),
    ("GET", "/v1/models", None, 401, "_none"),
    ("GET", "/v1/nothing-here", "user", 404, "_none"),
    ("DELETE", "/v1/models", "user", 405, "_none"),
    ("GET", "/admin/policy", "user", 403, "admin"),
    ("GET", "/v1/models", "user", 200, "info"),
], ids=["health", "metrics", "unauthenticated", "unknown-path", "wrong-method", "denied",
        "listing"])
async def test_every_outcome_gets_exactly_one_access_line(gateway, as_role, caplog, method,
                                                          path, role, status, route_group):
    headers = as_role(role) if role else {}
    with caplog.at_level(logging.INFO, logger="rolegate"):
        response = await gateway.request(method, path, headers=headers)

    assert response.status_code == status
    [line] = lines(caplog, "rolegate.access")
    assert (line["status"], line["route_group"], line["path"]) == (status, route_group, path)
    assert line["request_id"] == response.headers["x-request-id"]
    if status >= 400:
        assert line["code"] == response.json()["error"]["code"]


async def test_a_stream_is_logged_once_when_it_has_ended(gateway, as_role, caplog):
    with caplog.at_level(logging.INFO, logger="rolegate"):
        async with gateway.stream("POST", "/v1/chat/completions",
                                  json={**CHAT, "stream": True},
                                  headers=as_role("user")) as response:
            await response.aread()

    [line] = lines(caplog, "rolegate.access")
    assert (line["status"], line["model"], line["deployment"]) == (200, "echo", "echo")


@pytest.mark.parametrize(("credential", "code"), [
    (None, "missing_token"),
    ("not-a-jwt", "invalid_token"),
    ("expired", "token_expired"),
], ids=["missing", "malformed", "expired"])
async def test_an_authentication_failure_is_a_logged_denial_with_its_code(
        gateway, rsa_key, clock, caplog, credential, code):
    if credential == "expired":
        credential = token_for(rsa_key, clock, exp=int(clock.now) - 3600)
    headers = bearer(credential) if credential else {}
    with caplog.at_level(logging.INFO, logger="rolegate"):
        response = await gateway.post("/v1/chat/completions", json=CHAT, headers=headers)

    assert response.status_code == 401
    [line] = lines(caplog, "rolegate.decision")
    assert line == {"event": "authn", "request_id": response.headers["x-request-id"],
                    "method": "POST", "path": "/v1/chat/completions", "decision": "deny",
                    "code": code}


async def test_access_lines_can_be_turned_off(client_for, settings_from, upstream, published,
                                              as_role, caplog):
    config = sample_config(upstream.url)
    config["logging"] = {"access": False}
    gateway = client_for(settings_from(config))
    with caplog.at_level(logging.INFO, logger="rolegate"):
        await gateway.get("/v1/models", headers=as_role("user"))

    assert lines(caplog, "rolegate.access") == []
    assert len(lines(caplog, "rolegate.decision")) == 1


@pytest.mark.parametrize("incoming", ["abc-123", "req_1.2", "A" * 64],
                         ids=["dashed", "dotted", "longest"])
async def test_a_safe_request_id_from_the_caller_is_kept_and_passed_upstream(
        gateway, as_role, upstream, caplog, incoming):
    with caplog.at_level(logging.INFO, logger="rolegate"):
        response = await gateway.post("/v1/chat/completions",
                                      json={**CHAT, "model": "gpt-4o-mini"},
                                      headers={**as_role("user"), "x-request-id": incoming})

    assert response.headers["x-request-id"] == incoming
    sent = {name.lower(): value for name, value in upstream.requests[0].headers.items()}
    assert sent["x-request-id"] == incoming
    assert lines(caplog, "rolegate.access")[0]["request_id"] == incoming


@pytest.mark.parametrize("incoming", ["", "has space", "A" * 65, "a/b", "<script>", "a\"b",
                                      "id,another"],
                         ids=["empty", "space", "too-long", "slash", "markup", "quote",
                              "repeated"])
async def test_an_unsafe_request_id_is_replaced(gateway, as_role, incoming):
    response = await gateway.get("/v1/models",
                                 headers={**as_role("user"), "x-request-id": incoming})

    assert response.status_code == 200
    replaced = response.headers["x-request-id"]
    assert replaced != incoming
    assert len(replaced) == 16 and all(c in "0123456789abcdef" for c in replaced)


async def test_a_non_ascii_request_id_is_replaced(gateway):
    headers = [(b"x-request-id", "caf\u00e9".encode())]
    response = await gateway.get("/health/live", headers=headers)

    assert response.status_code == 200
    assert len(response.headers["x-request-id"]) == 16


SECRET_BODY = "sk-body-secret-0b7e61c4"


async def test_no_token_key_or_body_appears_in_any_log_line(
        gateway_for, settings_from, upstream, dev_issuer: DevIssuer, tmp_path, caplog):
    config = keyed_config({"url": f"sqlite+aiosqlite:///{tmp_path}/keys.db"}, upstream.url)
    config["policy"].append({"name": "people", "when": {"issuers": ["dev"], "roles": ["user"]},
                             "allow": {"routes": ["inference", "info"], "models": ["echo"]}})
    gateway = await gateway_for(settings_from(config))
    admin = bearer(dev_issuer.mint(subject="ops", roles=("rolegate.admin",)))
    user_token = dev_issuer.mint(subject="someone", roles=("user",))
    created = await gateway.post("/admin/keys", json={"name": "svc", "owner": "team",
                                                      "roles": ["svc"]}, headers=admin)
    assert created.status_code == 201, created.text
    api_key = created.json()["key"]
    secret_chat = {"messages": [{"role": "user", "content": SECRET_BODY}]}
    forged_key = api_key[:-4] + ("AAAA" if not api_key.endswith("AAAA") else "BBBB")
    forged_token = user_token[:-6] + ("AAAAAA" if not user_token.endswith("AAAAAA")
                                      else "BBBBBB")

    with caplog.at_level(logging.DEBUG):
        answers = [
            await gateway.post("/v1/chat/completions", json={**secret_chat, "model": "gpt-4o"},
                               headers=bearer(api_key)),
            await gateway.post("/v1/chat/completions", json={**secret_chat, "model": "echo"},
                               headers=bearer(user_token)),
            await gateway.post("/v1/chat/completions", json={**secret_chat, "model": "gpt-4o"},
                               headers=bearer(user_token)),
            await gateway.post("/v1/chat/completions", json={**secret_chat, "model": "echo"},
                               headers={"x-api-key": forged_key}),
            await gateway.post("/v1/chat/completions", json={**secret_chat, "model": "echo"},
                               headers=bearer(forged_token)),
            await gateway.post("/v1/chat/completions", content=b'{"model": "echo", "x": "'
                               + SECRET_BODY.encode(), headers=bearer(user_token)),
        ]

    assert [answer.status_code for answer in answers] == [200, 200, 403, 401, 401, 400]
    logged = "\n".join([caplog.text, *(repr(record.__dict__) for record in caplog.records)])
    assert len(lines(caplog, "rolegate.access")) == len(answers)
    for secret in (api_key, api_key[3:], user_token, user_token.split(".")[2],
                   forged_key, forged_token, SECRET_BODY):
        assert secret not in logged
