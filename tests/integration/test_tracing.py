"""OpenTelemetry traces, exported by the real SDK over OTLP/HTTP to a receiver that decodes the
protobuf: one trace per request continuing the caller's `traceparent`, GenAI and rolegate
attributes, spans for authentication, authorization and each upstream attempt, and the
attempt's context sent upstream."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from rolegate.app import build_app
from rolegate.config.load import parse_settings
from rolegate.config.model import TracingConfig
from rolegate.config.otel import with_otel_environment
from rolegate.providers.http import HttpClient
from tests.support.gateways import CHAT, bearer
from tests.support.lifespan import Lifespan
from tests.support.otlp import CLIENT, SERVER, OtlpReceiver

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


def is_sampled(traceparent: str) -> bool:
    """The `sampled` bit of a W3C traceparent's flags (Trace Context §3.2.2.5)."""
    return bool(int(traceparent.rsplit("-", 1)[1], 16) & 1)


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as server:
        yield server


def traced_config(upstream_url: str, receiver: OtlpReceiver, **tracing: Any) -> dict[str, Any]:
    return {
        "models": [
            {"name": "gpt-4o", "fallbacks": [],
             "deployments": [
                 {"provider": "openai-compatible", "api_base": f"{upstream_url}/v1",
                  "model": "gpt-4o-2024-08-06"}]},
            {"name": "broken", "deployments": [
                {"provider": "openai-compatible", "api_base": "http://127.0.0.1:9/v1",
                 "connect_timeout": 0.5}]},
        ],
        "auth": {"dev_issuer": {"enabled": True}},
        "policy": [{"name": "analysts", "when": {"roles": ["analyst"]},
                    "allow": {"routes": ["inference"], "models": ["gpt-4o", "broken"]}}],
        "tracing": {"enabled": True, "endpoint": receiver.url,
                    "service_name": "gateway-under-test", **tracing},
    }


async def serve(settings: Any, dev_issuer: Any, requests: list[tuple[str, dict[str, Any],
                                                                   dict[str, str]]]) -> list[Any]:
    """Send `requests` to a gateway built for `settings`, then shut it down (which exports
    every span still queued)."""
    http = HttpClient()
    app = build_app(settings, http=http, dev_issuer=dev_issuer)
    lifespan = Lifespan(app)
    await lifespan.startup()
    responses = []
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://rolegate.test") as client:
        for path, body, headers in requests:
            responses.append(await client.post(path, json=body, headers=headers))
    await lifespan.shutdown()
    return responses


async def test_a_request_is_one_trace_continuing_the_callers_with_genai_attributes(
        settings_from, upstream, receiver, dev_issuer):
    token = dev_issuer.mint(subject="alice", roles=("analyst",))
    headers = {**bearer(token), "traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"}

    [response] = await serve(settings_from(traced_config(upstream.url, receiver)), dev_issuer,
                             [("/v1/chat/completions", CHAT, headers)])

    assert response.status_code == 200
    assert set(receiver.paths) == {"/v1/traces"}
    assert set(receiver.content_types) == {"application/x-protobuf"}
    [request] = [span for span in receiver.spans if span.kind == SERVER]
    [attempt] = [span for span in receiver.spans if span.kind == CLIENT]
    [authenticate] = receiver.named("rolegate.authenticate")
    [authorize] = receiver.named("rolegate.authorize")
    assert {span.trace_id for span in receiver.spans} == {CALLER_TRACE}
    assert request.parent_span_id == CALLER_SPAN
    assert {authenticate.parent_span_id, authorize.parent_span_id, attempt.parent_span_id} == {
        request.span_id}
    assert request.name == "POST /v1/chat/completions"
    assert request.resource["service.name"] == "gateway-under-test"
    assert request.attributes | {
        "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o",
        "gen_ai.response.model": "gpt-4o-2024-08-06", "gen_ai.provider.name": "openai",
        "gen_ai.usage.input_tokens": 3, "gen_ai.usage.output_tokens": 2,
        "rolegate.subject": "alice", "rolegate.rule": "analysts", "rolegate.decision": "allow",
        "rolegate.deployment": "gpt-4o", "rolegate.attempts": 1,
        "http.response.status_code": 200,
    } == request.attributes
    assert request.attributes["rolegate.issuer"] == "dev"  # the issuer's configured name
    assert attempt.name == "chat gpt-4o-2024-08-06"
    assert attempt.attributes["gen_ai.request.model"] == "gpt-4o-2024-08-06"
    assert attempt.attributes["gen_ai.response.model"] == "gpt-4o-2024-08-06"
    assert attempt.attributes["gen_ai.provider.name"] == "openai"
    # A reply read whole: its usage is read from its body before its attempt's span ends.
    assert (attempt.attributes["gen_ai.usage.input_tokens"],
            attempt.attributes["gen_ai.usage.output_tokens"]) == (3, 2)
    # The upstream saw the attempt's span as its parent, in the caller's trace.
    sent = upstream.requests[0].headers["traceparent"]
    assert sent == f"00-{CALLER_TRACE}-{attempt.span_id}-01"


async def test_a_denied_request_and_a_failed_attempt_are_traced_as_such(
        settings_from, upstream, receiver, dev_issuer):
    analyst = bearer(dev_issuer.mint(subject="alice", roles=("analyst",)))
    settings = settings_from(traced_config(upstream.url, receiver))

    denied, failed = await serve(settings, dev_issuer, [
        ("/v1/chat/completions", {**CHAT, "model": "secret"}, analyst),
        ("/v1/chat/completions", {**CHAT, "model": "broken"}, analyst)])

    assert denied.status_code == 403
    by_model = {span.attributes.get("gen_ai.request.model"): span
                for span in receiver.spans if span.kind == SERVER}
    assert by_model["secret"].attributes["rolegate.decision"] == "deny"
    assert by_model["secret"].attributes["rolegate.error_code"] == "model_not_allowed"
    assert failed.status_code in (502, 503, 504)
    assert by_model["broken"].is_error
    attempts = [span for span in receiver.spans if span.kind == CLIENT]
    assert attempts and all(span.is_error for span in attempts)
    assert all(span.trace_id == by_model["broken"].trace_id for span in attempts)


async def test_without_a_callers_traceparent_each_request_starts_a_trace(
        settings_from, upstream, receiver, dev_issuer):
    analyst = bearer(dev_issuer.mint(subject="alice", roles=("analyst",)))

    await serve(settings_from(traced_config(upstream.url, receiver)), dev_issuer,
                [("/v1/chat/completions", CHAT, analyst)] * 2)

    requests = [span for span in receiver.spans if span.kind == SERVER]
    assert len({span.trace_id for span in requests}) == 2
    assert all(span.parent_span_id == "" for span in requests)


async def test_tracing_off_sends_no_traceparent_upstream(settings_from, upstream, receiver,
                                                         dev_issuer):
    config = traced_config(upstream.url, receiver, enabled=False)
    token = dev_issuer.mint(subject="alice", roles=("analyst",))

    [response] = await serve(settings_from(config), dev_issuer, [(
        "/v1/chat/completions", CHAT,
        {**bearer(token), "traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"})])

    assert response.status_code == 200
    assert "traceparent" not in {name.lower() for name in upstream.requests[0].headers}
    assert receiver.spans == []


def test_the_standard_otel_variables_configure_tracing():
    environ = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/",
               "OTEL_EXPORTER_OTLP_HEADERS": "api-key=s%3Dcret, tenant=a",
               "OTEL_SERVICE_NAME": "edge", "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
               "OTEL_TRACES_SAMPLER_ARG": "0.25"}

    settings = parse_settings("models: [{name: echo, provider: mock}]\n"
                              "auth: {dev_issuer: {enabled: true}}\n",
                              source="<test>", environ=environ)

    assert settings.tracing == TracingConfig(
        enabled=True, endpoint="http://collector:4318/v1/traces",
        headers={"api-key": "s=cret", "tenant": "a"}, service_name="edge", sample_ratio=0.25)


@pytest.mark.parametrize(("environ", "section", "expected"), [
    ({}, None, None),
    ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c/traces"}, {"enabled": False},
     {"enabled": False, "endpoint": "http://c/traces"}),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c", "OTEL_SDK_DISABLED": "true"}, None,
     {"enabled": False, "endpoint": "http://c/v1/traces"}),
    ({"OTEL_TRACES_EXPORTER": "otlp"}, {"service_name": "file"},
     {"enabled": True, "service_name": "file"}),
    ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c"}, None,
     {"enabled": False, "endpoint": "http://c/v1/traces"}),
], ids=["nothing-set", "file-wins", "sdk-disabled", "exporter-otlp", "exporter-none"])
def test_the_file_wins_over_the_environment(environ, section, expected):
    assert with_otel_environment(section, environ) == expected



async def test_an_unsampled_trace_records_nothing_but_still_goes_upstream(
        settings_from, upstream, receiver, dev_issuer):
    """A caller's `traceparent` without the sampled flag: no span is exported, and the upstream
    continues the same trace, unsampled."""
    token = dev_issuer.mint(subject="alice", roles=("analyst",))
    headers = {**bearer(token), "traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-00"}

    [response] = await serve(settings_from(traced_config(upstream.url, receiver)), dev_issuer,
                             [("/v1/chat/completions", CHAT, headers)])

    assert response.status_code == 200
    assert receiver.spans == []
    sent = upstream.requests[0].headers["traceparent"]
    assert sent.startswith(f"00-{CALLER_TRACE}-") and not is_sampled(sent)


async def test_a_sample_ratio_of_zero_records_no_new_trace(settings_from, upstream, receiver,
                                                           dev_issuer):
    analyst = bearer(dev_issuer.mint(subject="alice", roles=("analyst",)))

    [response] = await serve(
        settings_from(traced_config(upstream.url, receiver, sample_ratio=0.0)), dev_issuer,
        [("/v1/chat/completions", CHAT, analyst)])

    assert response.status_code == 200
    assert receiver.spans == []
    assert not is_sampled(upstream.requests[0].headers["traceparent"])


async def test_a_malformed_traceparent_starts_a_new_trace_under_the_sample_ratio(
        settings_from, upstream, receiver, dev_issuer):
    headers = {**bearer(dev_issuer.mint(subject="alice", roles=("analyst",))),
               "traceparent": "00-not-a-trace-01"}

    [response] = await serve(
        settings_from(traced_config(upstream.url, receiver, sample_ratio=0.0)), dev_issuer,
        [("/v1/chat/completions", CHAT, headers)])

    assert response.status_code == 200
    assert receiver.spans == []
    sent = upstream.requests[0].headers["traceparent"]
    assert "not-a-trace" not in sent and not is_sampled(sent)
    assert len(sent.split("-")[1]) == 32 and len(sent.split("-")[2]) == 16


async def test_a_streamed_reply_is_traced_when_its_stream_ends(settings_from, upstream, receiver,
                                                                dev_issuer):
    """The attempt's span ends with the stream, once the body has been relayed, and is
    exported in the request's trace."""
    analyst = bearer(dev_issuer.mint(subject="alice", roles=("analyst",)))

    [response] = await serve(settings_from(traced_config(upstream.url, receiver)), dev_issuer,
                             [("/v1/chat/completions", {**CHAT, "stream": True}, analyst)])

    assert response.status_code == 200 and b"data:" in response.content
    [request] = [span for span in receiver.spans if span.kind == SERVER]
    [attempt] = [span for span in receiver.spans if span.kind == CLIENT]
    assert attempt.parent_span_id == request.span_id
    assert attempt.trace_id == request.trace_id
    assert request.attributes["rolegate.attempts"] == 1
    assert attempt.attributes["http.response.status_code"] == 200  # set when the stream ended
    assert attempt.attributes["gen_ai.response.model"] == "gpt-4o-2024-08-06"
    assert not attempt.is_error
