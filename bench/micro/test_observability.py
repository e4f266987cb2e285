"""What observing one request costs: the request metrics alone, with the access line written to
a file, and one upstream attempt's counting and timing.

Run with `./dev pytest bench/micro/test_observability.py`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from prometheus_client import CollectorRegistry

from rolegate.server.asgi import Request
from rolegate.authn.principal import Principal
from rolegate.config.model import DeploymentConfig
from rolegate.observability.logging import AccessLog, DecisionLog, configure_logging
from rolegate.observability.metrics import GatewayMetrics
from rolegate.observability.requests import RequestObserver, accepted_request_id
from rolegate.observability.upstream import MeasuredProvider
from rolegate.providers.base import UpstreamCall, UpstreamReply

SCOPE = {"type": "http", "method": "POST", "path": "/v1/chat/completions",
         "headers": [(b"authorization", b"Bearer x"), (b"x-request-id", b"abc-123")]}
MODELS = {f"model-{index}": [f"model-{index}-{n}" for n in range(3)] for index in range(20)}


def observed_request() -> Request:
    request = Request(SCOPE, None, "")  # type: ignore[arg-type]
    request.request_id = accepted_request_id(request.headers.get(b"x-request-id"))
    request.state.update(route_group="inference", model="model-3", served_model="model-3",
                         deployment="model-3-1", attempts=1,
                         principal=Principal(issuer="idp", subject="s-1", client_id="c-1"))
    return request


def observer(*, is_logged: bool) -> RequestObserver:
    metrics = GatewayMetrics(CollectorRegistry(), models=MODELS, rules=["users", "admins"])
    return RequestObserver(metrics, AccessLog(is_enabled=is_logged), DecisionLog())


def test_request_metrics_only(benchmark) -> None:
    """Counting and timing one request, access line off."""
    watching = observer(is_logged=False)
    request = observed_request()
    benchmark(lambda: watching.finish(request, 200, watching.timer()))


def test_request_metrics_and_access_line(benchmark, tmp_path: Path) -> None:
    """Counting and timing one request and writing its access line to a file."""
    with open(tmp_path / "access.log", "w") as sink:
        configure_logging("info", sink)
        watching = observer(is_logged=True)
        request = observed_request()
        benchmark(lambda: watching.finish(request, 200, watching.timer()))
    logging.getLogger("rolegate").handlers.clear()


class _Instant:
    config = DeploymentConfig(provider="mock")

    async def open(self, call: UpstreamCall) -> UpstreamReply:
        return UpstreamReply(200, b"application/json", _one())


async def _one() -> AsyncIterator[bytes]:
    yield b"{}"


def _attempts(provider: MeasuredProvider | _Instant,
              loop: asyncio.AbstractEventLoop) -> Callable[[], None]:
    call = UpstreamCall("chat/completions", {}, b"{}", False, "r-1")

    async def many() -> None:
        for _ in range(100):
            reply = await provider.open(call)
            async for _chunk in reply.chunks:
                pass
            await reply.end()
    return lambda: loop.run_until_complete(many())


def test_upstream_attempt_unmeasured(benchmark, loop: asyncio.AbstractEventLoop) -> None:
    """The baseline for the next: a hundred replies opened, read and ended, not measured."""
    benchmark.extra_info["per"] = "100 attempts"
    benchmark(_attempts(_Instant(), loop))


def test_upstream_attempt_measured(benchmark, loop: asyncio.AbstractEventLoop) -> None:
    """The same through `MeasuredProvider`: each attempt counted and timed."""
    metrics = GatewayMetrics(CollectorRegistry(), models=MODELS)
    benchmark.extra_info["per"] = "100 attempts"
    measured = MeasuredProvider(_Instant(), metrics.deployment("model-3", "model-3-1"))
    benchmark(_attempts(measured, loop))
