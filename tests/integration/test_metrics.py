"""`/metrics` in-process: what each kind of request counts, that label values stay bounded, and
how the endpoint is exposed (public by default, admin-only, or off)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support.faulty import Fault, FaultyUpstream
from tests.support.process import free_port
from tests.support.sample_gateway import CHAT, bearer, sample_config, token_for
from tests.support.scrape import Scrape

MINI = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def make_gateway(client_for, settings_from, upstream, published):
    def make(**changes: Any) -> httpx.AsyncClient:
        config = sample_config(upstream.url)
        for key, value in changes.items():
            config[key] = value
        return client_for(settings_from(config))
    return make


@pytest.fixture
def gateway(make_gateway) -> httpx.AsyncClient:
    return make_gateway()


async def scrape(gateway: httpx.AsyncClient, path: str = "/metrics", **kwargs: Any) -> Scrape:
    response = await gateway.get(path, **kwargs)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    return Scrape(response.text)


async def test_metrics_are_served_without_a_credential_in_the_prometheus_format(gateway):
    response = await gateway.get("/metrics")

    assert response.status_code == 200
    assert "# TYPE rolegate_requests_total counter" in response.text
    assert "# TYPE rolegate_request_duration_seconds histogram" in response.text
    assert response.headers["x-request-id"]


async def test_an_answered_request_is_counted_by_route_group_model_and_status(gateway, as_role):
    response = await gateway.post("/v1/chat/completions", json=MINI, headers=as_role("user"))
    assert response.status_code == 200

    metrics = await scrape(gateway)

    assert metrics.value("rolegate_requests_total", route_group="inference",
                         model="gpt-4o-mini", status="200") == 1
    assert metrics.value("rolegate_request_duration_seconds_count",
                         route_group="inference") == 1
    assert metrics.value("rolegate_authz_decisions_total", decision="allow", rule="users") == 1
    assert metrics.value("rolegate_upstream_attempts_total", model="gpt-4o-mini",
                         deployment="gpt-4o-mini", outcome="success") == 1
    assert metrics.value("rolegate_upstream_latency_seconds_count", model="gpt-4o-mini",
                         deployment="gpt-4o-mini") == 1
    assert metrics.value("rolegate_tokens_total", model="gpt-4o-mini", kind="prompt") == 3
    assert metrics.value("rolegate_tokens_total", model="gpt-4o-mini", kind="completion") == 2


async def test_a_model_no_one_configured_is_counted_as_unknown_not_by_its_name(gateway, as_role):
    for name in ("made-up-model-1", "made-up-model-2"):
        response = await gateway.post("/v1/chat/completions", json={**CHAT, "model": name},
                                      headers=as_role("power"))
        assert response.status_code == 404

    metrics = await scrape(gateway)

    assert "made-up-model" not in metrics.text
    assert metrics.value("rolegate_requests_total", route_group="inference", model="_unknown",
                         status="404") == 2
    assert metrics.label_values("rolegate_requests_total", "model") <= {
        "gpt-4o", "gpt-4o-mini", "azure-4o", "echo", "_unknown", "_none"}


async def test_authentication_failures_are_counted_by_code(gateway, rsa_key, clock):
    expired = token_for(rsa_key, clock, roles=["user"], exp=int(clock.now) - 3600)
    await gateway.post("/v1/chat/completions", json=CHAT)
    await gateway.post("/v1/chat/completions", json=CHAT, headers=bearer(expired))
    await gateway.post("/v1/chat/completions", json=CHAT, headers=bearer("not-a-jwt"))

    metrics = await scrape(gateway)

    assert metrics.value("rolegate_authn_failures_total", code="missing_token") == 1
    assert metrics.value("rolegate_authn_failures_total", code="token_expired") == 1
    assert metrics.value("rolegate_authn_failures_total", code="invalid_token") == 1
    assert metrics.value("rolegate_requests_total", route_group="_none", model="_none",
                         status="401") == 3


async def test_denials_are_counted_without_who_was_denied(gateway, as_role):
    response = await gateway.post("/v1/chat/completions", json={**CHAT, "model": "gpt-4o"},
                                  headers=as_role("user", sub="alice@example.com"))
    assert response.status_code == 403

    metrics = await scrape(gateway)

    assert metrics.value("rolegate_authz_decisions_total", decision="deny", rule="_none") == 1
    assert metrics.value("rolegate_requests_total", route_group="inference", model="gpt-4o",
                         status="403") == 1
    assert "alice" not in metrics.text


async def test_a_stream_records_its_time_to_first_byte_and_its_tokens(gateway, as_role):
    async with gateway.stream("POST", "/v1/chat/completions", json={**CHAT, "stream": True},
                              headers=as_role("user")) as response:
        assert response.status_code == 200
        await response.aread()

    metrics = await scrape(gateway)

    labels = {"model": "echo", "deployment": "echo"}
    assert metrics.value("rolegate_upstream_first_byte_seconds_count", **labels) == 1
    assert metrics.value("rolegate_upstream_latency_seconds_count", **labels) == 1
    assert metrics.value("rolegate_upstream_attempts_total", outcome="success", **labels) == 1
    assert metrics.value("rolegate_tokens_total", model="echo", kind="completion") > 0
    assert metrics.value("rolegate_requests_total", route_group="inference", model="echo",
                         status="200") == 1


async def test_failed_upstream_attempts_are_counted_by_outcome(client_for, settings_from,
                                                               published, as_role):
    dead = f"http://127.0.0.1:{free_port()}"
    async with FaultyUpstream() as faulty:
        faulty.plan(Fault.error(503), Fault.error(503), Fault.error(503))
        config = sample_config(faulty.url)
        config["models"][0] = (
            {"name": "gpt-4o", "deployments": [
                {"id": "flaky", "provider": "openai-compatible", "api_base": f"{faulty.url}/v1"},
                {"id": "gone", "provider": "openai-compatible", "api_base": f"{dead}/v1"}]})
        config["routing"] = {"retries": {"max_attempts": 3, "backoff_initial": 0}}
        gateway = client_for(settings_from(config))
        response = await gateway.post("/v1/chat/completions", json={**CHAT, "model": "gpt-4o"},
                                      headers=as_role("power"))
        metrics = await scrape(gateway)

    assert response.status_code in (502, 503)
    assert metrics.value("rolegate_upstream_attempts_total", model="gpt-4o", deployment="gone",
                         outcome="error") >= 1
    assert metrics.value("rolegate_upstream_attempts_total", model="gpt-4o",
                         deployment="flaky", outcome="server_error") >= 1
    assert metrics.total("rolegate_upstream_attempts_total", outcome="success") == 0


async def test_key_set_fetches_and_keys_are_reported_per_issuer(gateway, as_role, clock):
    await gateway.get("/v1/models", headers=as_role("user"))

    metrics = await scrape(gateway)

    assert metrics.value("rolegate_jwks_fetches_total", issuer="idp", outcome="success") == 1
    assert metrics.value("rolegate_jwks_fetches_total", issuer="idp", outcome="failure") == 0
    assert metrics.value("rolegate_jwks_keys", issuer="idp") == 1
    assert metrics.value("rolegate_jwks_last_success_timestamp", issuer="idp") == clock.now


async def test_an_unreachable_key_set_is_a_failed_fetch(gateway, as_role, key_source):
    key_source.documents.clear()
    response = await gateway.get("/v1/models", headers=as_role("user"))
    assert response.status_code == 503

    metrics = await scrape(gateway)

    assert metrics.value("rolegate_jwks_fetches_total", issuer="idp", outcome="failure") == 1
    assert metrics.value("rolegate_jwks_keys", issuer="idp") == 0
    assert metrics.value("rolegate_jwks_last_success_timestamp", issuer="idp") is None


async def test_requests_refused_by_a_limit_are_counted_by_limit(make_gateway, upstream, as_role):
    config = sample_config(upstream.url)
    policy = config["policy"]
    policy[0]["allow"]["limits"] = {"rpm": 1}
    gateway = make_gateway(policy=policy)
    statuses = [(await gateway.post("/v1/chat/completions", json=CHAT,
                                    headers=as_role("user"))).status_code for _ in range(2)]

    metrics = await scrape(gateway)

    assert statuses == [200, 429]
    assert metrics.value("rolegate_rate_limited_total", limit="requests_per_minute") == 1


async def test_the_usage_queue_is_reported_when_usage_is_recorded(gateway_for, settings_from,
                                                                  upstream, tmp_path):
    config = sample_config(upstream.url)
    config["database"] = {"url": f"sqlite+aiosqlite:///{tmp_path}/usage.db"}
    gateway = await gateway_for(settings_from(config))

    metrics = await scrape(gateway)

    assert metrics.value("rolegate_usage_records_pending") == 0
    assert metrics.value("rolegate_usage_records_dropped_total") == 0
    assert metrics.value("rolegate_usage_write_failures_total") == 0


async def test_metrics_can_be_kept_for_administrators(make_gateway, as_role):
    gateway = make_gateway(server={"metrics": {"public": False}})

    anonymous = await gateway.get("/metrics")
    user = await gateway.get("/admin/metrics", headers=as_role("user"))
    metrics = await scrape(gateway, "/admin/metrics", headers=as_role("admin"))

    assert anonymous.status_code == 401
    assert user.status_code == 403
    assert metrics.value("rolegate_authz_decisions_total", decision="allow", rule="admins") == 1


async def test_metrics_can_be_served_on_another_path(make_gateway):
    gateway = make_gateway(server={"metrics": {"path": "/internal/prometheus"}})

    assert (await gateway.get("/internal/prometheus")).status_code == 200
    assert (await gateway.get("/metrics")).status_code == 401


async def test_metrics_can_be_turned_off(make_gateway, as_role):
    gateway = make_gateway(server={"metrics": {"enabled": False}})

    assert (await gateway.get("/metrics")).status_code == 401
    response = await gateway.get("/admin/metrics", headers=as_role("admin"))
    assert response.status_code == 404
    assert (await gateway.post("/v1/chat/completions", json=CHAT,
                               headers=as_role("user"))).status_code == 200
