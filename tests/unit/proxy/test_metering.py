"""`Metering` around one request: the usage record it hands the recorder names every field from
the request, the caller, the rule, the reply and the clock."""

from __future__ import annotations

from collections.abc import Iterator

import orjson

from rolegate.accounting.estimate import TokenEstimator
from rolegate.accounting.records import UsageRecord
from rolegate.authn.principal import Principal
from rolegate.authz.model import Decision
from rolegate.config.load import validate_settings
from rolegate.limits.memory import MemoryLimiter
from rolegate.limits.quota import QuotaPlan
from rolegate.limits.reservation import Reserver
from rolegate.providers.base import OneChunk, UpstreamReply
from rolegate.proxy.metering import Metering
from rolegate.proxy.streaming import response_for
from rolegate.proxy.usage import UsageMeter
from rolegate.routing.dispatcher import Forwarded
from rolegate.routing.request import ClientRequest
from rolegate.server.asgi import Request

SETTINGS = validate_settings({
    "models": [{"name": "gpt-4o", "input_cost_per_1k": 2.0, "output_cost_per_1k": 8.0,
                "deployments": [{"id": "east", "provider": "mock"}]}],
    "auth": {"dev_issuer": {"enabled": True}},
    "policy": [{"name": "writers", "when": {"roles": ["writer"]},
                "allow": {"routes": ["inference"], "models": ["*"]}}],
}, source="<test>")
REPLY = orjson.dumps({"choices": [], "usage": {"prompt_tokens": 30, "completion_tokens": 20,
                                               "total_tokens": 50}})


class Records:
    def __init__(self) -> None:
        self.kept: list[UsageRecord] = []

    def record(self, record: UsageRecord) -> None:
        self.kept.append(record)

    @property
    def is_accepting(self) -> bool:
        return True


def ticking(*times: float) -> Iterator[float]:
    yield from times


async def test_a_metered_reply_is_recorded_with_every_field_from_its_own_source() -> None:
    records = Records()
    times = ticking(1_000.0, 1_000.25)
    metering = Metering(QuotaPlan(SETTINGS.policy), MemoryLimiter(), records,
                        lambda: next(times), SETTINGS.models,
                        reserver=Reserver(SETTINGS.models, default_tokens=1024),
                        usage=UsageMeter(TokenEstimator()))
    who = Principal(issuer="https://idp.example", subject="sub-1", client_id="client-1",
                    key_id="key-1", end_user="end-user-1", roles=frozenset({"writer"}))
    request = Request({"type": "http", "method": "POST", "path": "/v1/chat/completions",
                       "headers": []}, None, "req-1")  # type: ignore[arg-type]
    call = ClientRequest("chat/completions", "gpt-4o", {"model": "gpt-4o"}, b"{}", False,
                         "req-1")
    reply = UpstreamReply(201, b"application/json", OneChunk(REPLY),
                          usage={"prompt_tokens": 30, "completion_tokens": 20,
                                 "total_tokens": 50})
    forwarded = Forwarded(reply, REPLY, [], "gpt-4o", "east", 1)

    async with metering.measure(request, who, Decision(True, "writers", "granted"),
                                call) as meter:
        meter.reach_upstream()
        await meter.attach(forwarded, response_for(forwarded, "chat/completions"))

    [record] = records.kept
    assert (record.ts, record.request_id, record.latency_ms) == (1_000.25, "req-1", 250.0)
    assert (record.issuer, record.subject, record.client_id, record.key_id,
            record.end_user) == ("https://idp.example", "sub-1", "client-1", "key-1",
                                 "end-user-1")
    assert (record.rule, record.model, record.provider, record.deployment) == (
        "writers", "gpt-4o", "mock", "east")
    assert (record.operation, record.is_stream, record.status) == (
        "chat/completions", False, 201)
    assert (record.prompt_tokens, record.completion_tokens, record.total_tokens) == (30, 20, 50)
    assert record.cost_usd == (30 * 2.0 + 20 * 8.0) / 1000
    assert (record.estimated, record.dimensions, len(record.record_id)) == (False, (), 32)
