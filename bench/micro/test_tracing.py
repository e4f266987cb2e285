"""What tracing one request costs on the event loop: its span started, authentication and one
authorization recorded, one upstream attempt opened through the traced provider, read and
ended, the request's span finished and its trace encoded; sampled, and not sampled.

Run with `./dev pytest bench/micro/test_tracing.py` (against `test_upstream_attempt_unmeasured`
in `test_observability.py` for the attempt without tracing).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from time import time_ns

from rolegate.authn.principal import Principal
from rolegate.authz.model import Action, Decision
from rolegate.config.model import DeploymentConfig
from rolegate.observability.otlp import OtlpEncoder
from rolegate.observability.requests import accepted_request_id
from rolegate.observability.tracing import Tracing
from rolegate.providers.base import Provider, UpstreamCall, UpstreamReply
from rolegate.server.asgi import Request

SCOPE = {"type": "http", "method": "POST", "path": "/v1/chat/completions",
         "headers": [(b"authorization", b"Bearer x")]}
WHO = Principal(issuer="idp", subject="s-1", client_id="c-1")
ACTION = Action("inference", "/v1/chat/completions", "model-3")
ALLOWED = Decision(True, "users", "allowed by rule users")


class _Dropped:
    """The export queue, dropping what it is given (its thread is not what is measured)."""

    def put(self, spans: bytes) -> None:
        pass


class _Instant:
    config = DeploymentConfig(provider="mock")

    async def open(self, call: UpstreamCall) -> UpstreamReply:
        return UpstreamReply(200, b"application/json", _one(),
                             usage={"prompt_tokens": 12, "completion_tokens": 34})


async def _one() -> AsyncIterator[bytes]:
    yield b"{}"


def _requests(sample_ratio: float, loop: asyncio.AbstractEventLoop) -> Callable[[], None]:
    tracing = Tracing(_Dropped(), OtlpEncoder({"service.name": "rolegate"},  # type: ignore[arg-type]
                                               scope="rolegate",
                                               uncached=frozenset({"rolegate.request_id"})),
                      sample_ratio=sample_ratio)
    provider: Provider = tracing.traced(_Instant(), "model-3-1", "model-3-upstream")

    async def one() -> None:
        request = Request(SCOPE, None, "")  # type: ignore[arg-type]
        request.request_id = accepted_request_id(None)
        token = tracing.start(request, request.headers)
        if tracing.is_recording(request):
            started = time_ns()
            tracing.authenticated(request, started)
        request.state.update(principal=WHO, route_group="inference")
        tracing.decided(request, WHO, ACTION, ALLOWED)
        request.state.update(model="model-3", deployment="model-3-1", attempts=1)
        await _forward(request, provider)
        tracing.finish(request, 200, token)

    async def many() -> None:
        for _ in range(100):
            await loop.create_task(one())  # a task each, as a request is
    return lambda: loop.run_until_complete(many())


async def _forward(request: Request, provider: Provider) -> None:
    """One attempt through `provider`, its reply read to the end, as a handler's is."""
    reply = await provider.open(UpstreamCall("chat/completions", {}, b"{}", False,
                                             request.request_id))
    async for _chunk in reply.chunks:
        pass
    await reply.end()
    request.state["reply"] = reply


def test_traced_request_sampled(benchmark, loop: asyncio.AbstractEventLoop) -> None:
    """A hundred requests, each one trace of four spans, encoded."""
    benchmark.extra_info["per"] = "100 requests"
    benchmark(_requests(1.0, loop))


def test_traced_request_not_sampled(benchmark, loop: asyncio.AbstractEventLoop) -> None:
    """A hundred requests none of which is sampled: only a `traceparent` goes upstream."""
    benchmark.extra_info["per"] = "100 requests"
    benchmark(_requests(0.0, loop))


def test_request_not_traced(benchmark, loop: asyncio.AbstractEventLoop) -> None:
    """The baseline: the same hundred requests and attempts, without tracing."""
    provider = _Instant()

    async def one() -> None:
        request = Request(SCOPE, None, "")  # type: ignore[arg-type]
        request.request_id = accepted_request_id(None)
        request.state.update(principal=WHO, route_group="inference", model="model-3",
                             deployment="model-3-1", attempts=1)
        await _forward(request, provider)

    async def many() -> None:
        for _ in range(100):
            await loop.create_task(one())
    benchmark.extra_info["per"] = "100 requests"
    benchmark(lambda: loop.run_until_complete(many()))
