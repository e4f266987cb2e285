"""How `Tracing` hands traces over: once the request's span and every attempt have ended, in
the order they ended; an attempt made outside any request is a trace of its own."""

from __future__ import annotations

import random
from typing import Any, ClassVar

from rolegate.observability.spans import CLIENT, SERVER, Trace
from rolegate.observability.tracing import Tracing, _AttemptEnd
from rolegate.providers.base import UpstreamCall


class Captured:
    def __init__(self) -> None:
        self.traces: list[Trace] = []

    def put(self, trace: Trace) -> None:
        self.traces.append(trace)

    def close(self) -> None:
        pass


class Request:
    method = "POST"
    path = "/v1/chat/completions"
    request_id = "req-1"

    def __init__(self) -> None:
        self.state: dict[str, Any] = {"route_group": "inference"}


class Reply:
    status = 200
    usage: ClassVar[dict[str, int]] = {"prompt_tokens": 3, "completion_tokens": 2}


class Config:
    provider = "openai"


CALL = UpstreamCall("chat/completions", {}, None, False, "req-1")


def tracing() -> tuple[Tracing, Captured]:
    captured = Captured()
    return Tracing(captured, rng=random.Random(7)), captured  # type: ignore[arg-type]


async def test_an_attempt_ending_after_its_request_holds_the_trace_back_until_then():
    traced, captured = tracing()
    request = Request()
    token = traced.start(request, {})
    attempt = traced.attempt(traced.current(), CALL, Config, "gpt-4o",  # type: ignore[arg-type]
                             "gpt-4o-2024-08-06")

    traced.finish(request, 200, token)
    assert captured.traces == []  # the stream is still being relayed

    _AttemptEnd(traced, attempt, Reply, "openai", "gpt-4o-2024-08-06")()  # type: ignore[arg-type]
    [(trace_id, _, spans)] = captured.traces
    assert [(span[0], span[1]) for span in spans] == [
        ("chat gpt-4o-2024-08-06", CLIENT), ("POST /v1/chat/completions", SERVER)]
    attempt_span, request_span = spans
    assert attempt_span[3] == request_span[2]  # the attempt's parent is the request's span
    assert dict(attempt_span[7])["gen_ai.usage.input_tokens"] == 3
    # the request's span had ended: what served it is not added afterwards
    assert "gen_ai.provider.name" not in dict(request_span[7])
    assert trace_id and traced.current() is None


async def test_an_attempt_outside_any_request_is_a_trace_of_its_own():
    traced, captured = tracing()

    attempt = traced.attempt(traced.current(), CALL, Config, "gpt-4o",  # type: ignore[arg-type]
                             "gpt-4o-2024-08-06")
    traced.ended(attempt)

    [(trace_id, state, [span])] = captured.traces
    assert span[1] == CLIENT and span[3] == 0  # a root span
    assert attempt.traceparent == f"00-{trace_id:032x}-{span[2]:016x}-01"
    assert state == ""
