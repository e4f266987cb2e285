"""The gateway with a `RequestObserver`: a request that ends in a bug, or whose caller left before
its body arrived, still gets its one access line and its count."""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
from prometheus_client import CollectorRegistry, generate_latest

from rolegate.api.routes import Route
from rolegate.authn.principal import Principal
from rolegate.observability.logging import AccessLog, DecisionLog
from rolegate.observability.metrics import GatewayMetrics
from rolegate.observability.requests import RequestObserver
from rolegate.server.asgi import Request, Response
from rolegate.server.gateway import Gateway
from tests.support.front_door import AcceptAnyone, every_operation, open_guard
from tests.support.scrape import Scrape


async def failing(request: Request, route: Route, who: Principal) -> Response:
    raise RuntimeError("a bug")


async def reading(request: Request, route: Route, who: Principal) -> Response:
    await request.body(1024)
    return Response()


def observed_gateway(handler: Any) -> tuple[Gateway, CollectorRegistry]:
    registry = CollectorRegistry()
    observer = RequestObserver(GatewayMetrics(registry, models={}), AccessLog(), DecisionLog())
    gateway = Gateway(authenticator=AcceptAnyone(), guard=open_guard(),  # type: ignore[arg-type]
                      handlers=every_operation(handler), public={}, on_startup=[],
                      on_shutdown=[], observer=observer)
    return gateway, registry


def access_lines(caplog: Any) -> list[dict[str, Any]]:
    return [json.loads(record.getMessage()) for record in caplog.records
            if record.name == "rolegate.access"]


async def test_a_bug_is_logged_and_counted_as_a_500(caplog):
    gateway, registry = observed_gateway(failing)
    transport = httpx.ASGITransport(app=gateway)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw.test") as client:
        with caplog.at_level(logging.INFO, logger="rolegate"):
            response = await client.get("/v1/models")

    assert response.status_code == 500
    [line] = access_lines(caplog)
    assert (line["status"], line["code"], line["route_group"]) == (500, "internal_error", "info")
    scrape = Scrape(generate_latest(registry).decode())
    assert scrape.value("rolegate_requests_total", route_group="info", model="_none",
                        status="500") == 1


async def test_a_caller_that_left_before_its_body_arrived_is_logged_as_499(caplog):
    gateway, _registry = observed_gateway(reading)
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    async def send(message: Any) -> None:
        sent.append(message)
    scope = {"type": "http", "method": "POST", "path": "/v1/chat/completions", "headers": []}
    with caplog.at_level(logging.INFO, logger="rolegate"):
        await gateway(scope, receive, send)

    assert sent == []
    [line] = access_lines(caplog)
    assert (line["status"], line["route_group"]) == (499, "inference")
